"""The plan compiler: a layer :class:`~jsengine_ml.topology.Graph` -> a :class:`Plan`.

A plan is a list of kernel calls (``abi.KERNELS``) over buffers ("slots") of one linear memory,
plus one blob of weights packed for the kernels. It is made once, at load time; the engine runs it
per batch with no allocation. Shapes are static except the batch: a slot holds ``per_row``
elements per batch row (plus ``fixed`` elements), and a kernel argument may be ``n * k``.

The engine runs a big batch in row slices (each op over the slice's rows, then the next slice), so
activations stay in cache: model inputs and outputs (``io`` slots) hold every row of the batch and
each slice reads and writes its own rows of them; every other slot holds one slice and is reused.

Layers outside :data:`SUPPORTED` (or configurations the kernels do not cover) raise
:class:`UnsupportedModelError`, which ``runtime="auto"`` turns into a fallback to tfjs.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .._types import Array
from ..errors import ModelError
from ..topology import Graph, LayerCall, TensorRef
from . import abi

#: Layers the compiled runtime covers.
SUPPORTED = (
    "Dense", "Conv1D", "Conv2D", "DepthwiseConv2D", "SeparableConv1D", "SeparableConv2D",
    "MaxPooling1D", "MaxPooling2D", "AveragePooling1D", "AveragePooling2D",
    "GlobalMaxPooling1D", "GlobalMaxPooling2D", "GlobalAveragePooling1D", "GlobalAveragePooling2D",
    "Flatten", "Reshape", "Permute", "RepeatVector", "BatchNormalization", "LayerNormalization",
    "Dropout", "SpatialDropout1D", "SpatialDropout2D", "SpatialDropout3D", "GaussianNoise", "GaussianDropout",
    "AlphaDropout", "ActivityRegularization", "Activation", "ReLU", "LeakyReLU", "PReLU", "ELU", "Softmax",
    "ThresholdedReLU", "Embedding", "SimpleRNN", "LSTM", "GRU", "Bidirectional", "TimeDistributed",
    "Concatenate", "Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum",
)
#: Layers that are the identity at inference.
IDENTITY = (
    "Dropout", "SpatialDropout1D", "SpatialDropout2D", "SpatialDropout3D", "GaussianNoise", "GaussianDropout",
    "AlphaDropout", "ActivityRegularization",
)
#: Activation spellings (Keras and tfjs) -> ``abi.UNARY`` names; softmax / log_softmax are kernels.
ACTIVATIONS = {
    "linear": "linear", "relu": "relu", "relu6": "relu6", "elu": "elu", "selu": "selu", "sigmoid": "sigmoid",
    "hard_sigmoid": "hard_sigmoid", "hardSigmoid": "hard_sigmoid", "tanh": "tanh", "softplus": "softplus",
    "softsign": "softsign", "swish": "swish", "silu": "swish", "gelu": "gelu", "gelu_new": "gelu_tanh",
    "mish": "mish", "softmax": "softmax", "log_softmax": "log_softmax", "logSoftmax": "log_softmax",
    "leaky_relu": "leaky_relu",
}
ALIGN = 16


class UnsupportedModelError(ModelError):
    """The model uses a layer or an option the compiled runtime does not cover (tfjs may run it)."""


@dataclass(frozen=True)
class Slot:
    """A buffer: ``per_row`` elements per batch row plus ``fixed`` elements, 4 bytes each.

    ``io``: a model input or output, holding all rows of a batch (others hold one row slice).
    """

    per_row: int
    fixed: int = 0
    io: bool = False


@dataclass(frozen=True)
class Tensor:
    """A value flowing between layers: where it lives and its shape without the batch axis."""

    slot: int
    shape: tuple[int, ...]
    dtype: str = "float32"

    @property
    def size(self) -> int:
        return math.prod(self.shape)


@dataclass(frozen=True)
class Port:
    """A model input or output: name, shape without batch, dtype and its slot.

    ``vocab``: for token-id inputs (read by Embedding layers), ids must lie in ``[0, vocab)``.
    """

    name: str
    shape: tuple[int, ...]
    dtype: str
    slot: int
    vocab: int | None = None


@dataclass
class Op:
    kernel: str
    args: list[Any]
    layer: str


@dataclass
class Plan:
    """What the engine runs: ops over slots, packed weights, inputs and outputs."""

    name: str
    ops: list[Op]
    slots: list[Slot]
    weights: bytes
    inputs: list[Port]
    outputs: list[Port]
    layers: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        """The plan as ``compiled/runtime.js`` reads it (weights travel separately)."""
        return {
            "abi": 1,
            "name": self.name,
            "weightBytes": len(self.weights),
            "slots": [[s.per_row, s.fixed, int(s.io)] for s in self.slots],
            "inputs": [_port_json(p) for p in self.inputs],
            "outputs": [_port_json(p) for p in self.outputs],
            "ops": [[op.kernel, [_arg_json(a) for a in op.args], op.layer] for op in self.ops],
        }


def _port_json(port: Port) -> dict[str, Any]:
    return {"name": port.name, "shape": list(port.shape), "dtype": port.dtype, "slot": port.slot}


@dataclass(frozen=True)
class _At:
    """Address of a (virtual) slot plus a byte offset.

    ``stride``: elements per batch row by which a row slice moves the address: the tensor's row size
    in an ``io`` slot, 0 in the others (they hold the current slice only). Set by :func:`_allocate`.
    """

    slot: int
    add: int = 0
    stride: int = 0


@dataclass(frozen=True)
class _Weight:
    offset: int


@dataclass(frozen=True)
class _Rows:
    """``n * mult`` where n is the batch of the call."""

    mult: int


def _arg_json(arg: Any) -> Any:
    if isinstance(arg, _At):
        return ["s", arg.slot, arg.add, arg.stride]
    if isinstance(arg, _Weight):
        return ["w", arg.offset]
    if isinstance(arg, _Rows):
        return ["n", arg.mult]
    if isinstance(arg, float):
        if not math.isfinite(arg):
            return ["f", "nan" if math.isnan(arg) else ("inf" if arg > 0 else "-inf")]
        return float(np.float32(arg))  # the kernels take float32: both kernel sets see the same value
    return arg


# ---------------------------------------------------------------------- helpers for configs
def _pair(value: Any, rank: int, name: str, where: str) -> tuple[int, ...]:
    if isinstance(value, (int, float)):
        return (int(value),) * rank
    values = tuple(int(v) for v in value)
    if len(values) != rank:
        raise UnsupportedModelError(f"{where}: {name} {list(values)} does not have {rank} values")
    return values


def _conv_geometry(size: int, k: int, stride: int, dil: int, padding: str, where: str) -> tuple[int, int]:
    """(output size, padding before) of one spatial axis, as TensorFlow computes them."""
    span = dil * (k - 1) + 1
    if padding == "valid":
        out = (size - span) // stride + 1
        if out <= 0:
            raise UnsupportedModelError(f"{where}: window {span} does not fit in input size {size}")
        return out, 0
    if padding == "same":
        out = -(-size // stride)
        total = max((out - 1) * stride + span - size, 0)
        return out, total // 2
    if padding == "causal":
        return (size - 1) // stride + 1, span - 1
    raise UnsupportedModelError(f"{where}: padding {padding!r} is not supported")


class _Compiler:
    def __init__(self, graph: Graph, source: str):
        self.graph = graph
        self.source = source
        self.slots: list[Slot] = []
        self.ops: list[Op] = []
        self.blob: list[bytes] = []
        self.blob_size = 0
        self.tensors: dict[tuple[str, int, int], Tensor] = {}
        self.layer = ""
        #: Rows of the current layer per model row (TimeDistributed runs its layer on batch * steps rows).
        self.rows = 1

    # -------------------------------------------------------------- building blocks
    def where(self, call: LayerCall | None = None) -> str:
        if call is None:
            return f"{self.source}: layer {self.layer!r}"
        return f"{self.source}: layer {call.layer!r} ({call.class_name})"

    def new(self, shape: tuple[int, ...], dtype: str = "float32") -> Tensor:
        self.slots.append(Slot(math.prod(shape) * self.rows))
        return Tensor(len(self.slots) - 1, shape, dtype)

    def scratch(self, per_row: int, fixed: int = 0) -> _At:
        self.slots.append(Slot(per_row * self.rows, fixed))
        return _At(len(self.slots) - 1)

    def weight(self, array: Array, dtype: Any = np.float32) -> _Weight:
        data = np.ascontiguousarray(array, dtype=dtype).tobytes()
        offset = self.blob_size
        padded = data + b"\0" * (-len(data) % ALIGN)
        self.blob.append(padded)
        self.blob_size += len(padded)
        return _Weight(offset)

    def emit(self, kernel: str, *args: Any) -> None:
        if len(args) != len(abi.KERNELS[kernel]):
            raise AssertionError(f"{kernel} takes {abi.KERNELS[kernel]}, got {len(args)} arguments")
        self.ops.append(Op(kernel, list(args), self.layer))

    @staticmethod
    def at(t: Tensor, add: int = 0) -> _At:
        return _At(t.slot, add)

    # -------------------------------------------------------------- activations
    def activation_name(self, value: Any) -> str:
        if isinstance(value, dict):
            value = value.get("config", {}).get("name") if value.get("class_name") == "function" else value.get(
                "class_name")
        name = ACTIVATIONS.get(str(value or "linear"))
        if name is None:
            raise UnsupportedModelError(f"{self.where()}: activation {value!r} is not covered by the compiled runtime")
        if name == "hard_sigmoid" and self.graph.keras_major >= 3:
            return "hard_sigmoid_k3"
        return name

    @staticmethod
    def clamp(name: str) -> tuple[float, float] | None:
        """The (lo, hi) a dense/conv kernel can fuse for this activation, or None."""
        return {"linear": (-math.inf, math.inf), "relu": (0.0, math.inf), "relu6": (0.0, 6.0)}.get(name)

    def activate(self, x: Tensor, name: str, a: float = 0.0, b: float = 0.0, *,
                 fresh: bool = False) -> Tensor:
        """Apply activation ``name``: in place in x's buffer, or into a new tensor when ``fresh``."""
        if name == "linear":
            return x
        if name in ("softmax", "log_softmax"):
            return self.softmax(x, len(x.shape) - 1, log=name == "log_softmax", fresh=fresh)
        if name == "elu" and a == 0.0:
            a = 1.0
        if name == "leaky_relu" and a == 0.0:
            a = 0.2 if self.graph.keras_major >= 3 else 0.3
        y = self.new(x.shape) if fresh else x
        self.emit("unary", self.at(x), self.at(y), _Rows(self.rows * x.size), abi.UNARY_CODES[name], a, b)
        return y

    def softmax(self, x: Tensor, axis: int, *, log: bool = False, fresh: bool = False) -> Tensor:
        y = self.new(x.shape) if fresh else x
        outer = self.rows * math.prod(x.shape[:axis])
        self.emit("softmax", self.at(x), self.at(y), _Rows(outer), x.shape[axis], math.prod(x.shape[axis + 1 :]),
                  int(log))
        return y

    # -------------------------------------------------------------- the walk
    def compile(self) -> Plan:
        graph = self.graph
        inputs = []
        vocabs = self._token_inputs()
        for spec in graph.inputs:
            if any(d is None for d in spec.shape):
                raise UnsupportedModelError(
                    f"{self.source}: input {spec.name!r} has shape {list(spec.shape)}; the compiled runtime needs "
                    f"every dimension but the batch fixed"
                )
            dtype = "int32" if spec.name in vocabs else "float32"
            t = self.new(tuple(int(d) for d in spec.shape), dtype)  # type: ignore[arg-type]
            self.tensors[(spec.ref.layer, 0, 0)] = t
            inputs.append(Port(spec.name, t.shape, dtype, t.slot, vocabs.get(spec.name)))
        for call in graph.calls:
            self.layer = call.layer
            ins = [self.tensor(ref) for ref in call.inputs]
            out = self.lower(call, ins)
            self.tensors[(call.layer, call.node, 0)] = out
        outputs: list[Port] = []
        input_slots = {p.slot for p in inputs}
        for name, ref in zip(graph.output_names(), graph.outputs, strict=True):
            t = self.tensor(ref)
            if t.slot in input_slots or t.slot in {p.slot for p in outputs}:  # an input or a repeated output
                self.layer = name
                copy = self.new(t.shape, t.dtype)
                self.emit("copy", self.at(t), self.at(copy), _Rows(1), 1, t.size, t.size, 0, t.size, 0)
                t = copy
            outputs.append(Port(name, t.shape, t.dtype, t.slot))
        ops, slots, ports = _allocate(self.ops, self.slots, inputs, outputs)
        return Plan(
            name=graph.name, ops=ops, slots=slots, weights=b"".join(self.blob),
            inputs=[p for p in ports[: len(inputs)]], outputs=[p for p in ports[len(inputs) :]],
            layers=[c.class_name for c in graph.calls],
        )

    def _token_inputs(self) -> dict[str, int]:
        """Model inputs read only by Embedding layers -> the smallest vocabulary among them.

        Their ids travel as int32; every other input travels as float32 (Keras casts integer inputs
        of other layers to floats). An input read by both kinds is not supported.
        """
        vocabs: dict[str, int] = {}
        others: set[str] = set()
        for call in self.graph.calls:
            for ref in call.inputs:
                if call.class_name == "Embedding":
                    vocab = int(call.config.get("input_dim", 0))
                    vocabs[ref.layer] = min(vocabs.get(ref.layer, vocab), vocab)
                else:
                    others.add(ref.layer)
        names = {s.name for s in self.graph.inputs}
        mixed = set(vocabs) & others & names
        if mixed:
            raise UnsupportedModelError(f"{self.source}: input {sorted(mixed)[0]!r} feeds an Embedding and other "
                                        f"layers; the compiled runtime needs token inputs to feed Embeddings only")
        return {name: vocab for name, vocab in vocabs.items() if name in names}

    def tensor(self, ref: TensorRef) -> Tensor:
        key = (ref.layer, ref.node, ref.index)
        if key not in self.tensors:
            raise UnsupportedModelError(
                f"{self.source}: layer {ref.layer!r} output {ref.index} is used, but the compiled runtime "
                f"only follows the first output of each layer"
            )
        return self.tensors[key]

    def lower(self, call: LayerCall, ins: list[Tensor]) -> Tensor:
        cls, cfg = call.class_name, call.config
        if cls not in SUPPORTED:
            raise UnsupportedModelError(
                f"{self.where(call)} is not covered by the compiled runtime; load it with runtime='tfjs' "
                f"(or 'auto', which falls back to tfjs)"
            )
        if cfg.get("data_format", "channels_last") not in ("channels_last", None):
            raise UnsupportedModelError(f"{self.where(call)}: data_format {cfg['data_format']!r} (channels_last only)")
        if cls in IDENTITY:
            return ins[0]
        method = getattr(self, f"_{cls}", None)
        if method is None:
            method = getattr(self, {"Add": "_merge", "Subtract": "_merge", "Multiply": "_merge", "Average": "_merge",
                                    "Maximum": "_merge", "Minimum": "_merge"}[cls])
        result: Tensor = method(call, ins)
        return result

    # -------------------------------------------------------------- core layers
    def _Dense(self, call: LayerCall, ins: list[Tensor]) -> Tensor:
        x = ins[0]
        units = int(call.config["units"])
        kernel = call.weight("kernel")
        bias = call.weight("bias") if call.config.get("use_bias", True) else None
        if kernel is None or kernel.shape != (x.shape[-1], units):
            raise ModelError(f"{self.where(call)}: kernel shape {None if kernel is None else kernel.shape} does "
                             f"not fit input {list(x.shape)} -> {units} units")
        act = self.activation_name(call.config.get("activation"))
        return self.dense(x, kernel, bias, act)

    def dense(self, x: Tensor, kernel: Array, bias: Array | None, act: str) -> Tensor:
        k, n = kernel.shape
        y = self.new((*x.shape[:-1], n))
        lo, hi = self.clamp(act) or (-math.inf, math.inf)
        m = _Rows(self.rows * math.prod(x.shape[:-1]))
        self.emit("dense", self.at(x), self.weight(abi.pack_dense(kernel, bias)), self.at(y), m, k, n, lo, hi)
        return y if self.clamp(act) else self.activate(y, act)

    def _Activation(self, call: LayerCall, ins: list[Tensor]) -> Tensor:
        act = self.activation_name(call.config.get("activation"))
        return self.activate(ins[0], act, fresh=True)

    def _ReLU(self, call: LayerCall, ins: list[Tensor]) -> Tensor:
        cfg = call.config
        if float(cfg.get("threshold") or 0.0) != 0.0:
            raise UnsupportedModelError(f"{self.where(call)}: ReLU threshold is not supported")
        slope = float(cfg.get("negative_slope") or 0.0)
        top = cfg.get("max_value")
        if slope == 0.0 and top is None:
            return self.activate(ins[0], "relu", fresh=True)
        return self.activate(ins[0], "relu_clip", slope, math.inf if top is None else float(top), fresh=True)

    def _LeakyReLU(self, call: LayerCall, ins: list[Tensor]) -> Tensor:
        cfg = call.config
        slope = cfg.get("negative_slope", cfg.get("alpha"))
        if slope is None:
            slope = 0.3 if self.graph.keras_major < 3 else 0.2
        return self.activate(ins[0], "leaky_relu", float(slope), fresh=True)

    def _ELU(self, call: LayerCall, ins: list[Tensor]) -> Tensor:
        return self.activate(ins[0], "elu", float(call.config.get("alpha", 1.0)), fresh=True)

    def _ThresholdedReLU(self, call: LayerCall, ins: list[Tensor]) -> Tensor:
        return self.activate(ins[0], "thresholded_relu", float(call.config.get("theta", 1.0)), fresh=True)

    def _Softmax(self, call: LayerCall, ins: list[Tensor]) -> Tensor:
        x = ins[0]
        axis = call.config.get("axis", -1)
        axis = axis[0] if isinstance(axis, list) and len(axis) == 1 else axis
        if not isinstance(axis, int):
            raise UnsupportedModelError(f"{self.where(call)}: softmax over axes {axis} is not supported")
        return self.softmax(x, self._axis(axis, len(x.shape) + 1, call) - 1, fresh=True)

    def _PReLU(self, call: LayerCall, ins: list[Tensor]) -> Tensor:
        x = ins[0]
        alpha = call.weight("alpha")
        assert alpha is not None
        full = np.broadcast_to(alpha.astype(np.float32), x.shape)
        y = self.new(x.shape)
        self.emit("prelu", self.at(x), self.at(y), self.weight(full), _Rows(self.rows), x.size)
        return y

    def _axis(self, axis: int, rank: int, call: LayerCall) -> int:
        """Keras axis (batch included, may be negative) -> index with the batch axis at 0."""
        resolved = axis + rank if axis < 0 else axis
        if not 1 <= resolved < rank:
            raise UnsupportedModelError(f"{self.where(call)}: axis {axis} of a rank-{rank} tensor is not supported")
        return resolved

    # -------------------------------------------------------------- shapes
    def _Flatten(self, call: LayerCall, ins: list[Tensor]) -> Tensor:
        return Tensor(ins[0].slot, (ins[0].size,), ins[0].dtype)

    def _Reshape(self, call: LayerCall, ins: list[Tensor]) -> Tensor:
        x = ins[0]
        target = [int(d) for d in call.config["target_shape"]]
        if target.count(-1) == 1:
            known = math.prod(d for d in target if d != -1)
            target[target.index(-1)] = x.size // known if known else 0
        if math.prod(target) != x.size:
            raise ModelError(f"{self.where(call)}: cannot reshape {list(x.shape)} to {target}")
        return Tensor(x.slot, tuple(target), x.dtype)

    def _Permute(self, call: LayerCall, ins: list[Tensor]) -> Tensor:
        x = ins[0]
        dims = [int(d) - 1 for d in call.config["dims"]]
        if len(x.shape) > 4 or sorted(dims) != list(range(len(x.shape))):
            raise UnsupportedModelError(f"{self.where(call)}: permutation {call.config['dims']} of {list(x.shape)}")
        strides = [math.prod(x.shape[i + 1 :]) for i in range(len(x.shape))]
        out_shape = tuple(x.shape[d] for d in dims)
        y = self.new(out_shape, x.dtype)
        d = list(out_shape) + [1] * (4 - len(out_shape))
        s = [strides[i] for i in dims] + [0] * (4 - len(dims))
        self.emit("permute", self.at(x), self.at(y), _Rows(self.rows), *d, *s)
        return y

    def _RepeatVector(self, call: LayerCall, ins: list[Tensor]) -> Tensor:
        x = ins[0]
        times = int(call.config["n"])
        y = self.new((times, *x.shape), x.dtype)
        self.emit("copy", self.at(x), self.at(y), _Rows(self.rows), times, x.size, x.size, 0, times * x.size, x.size)
        return y

    def _Concatenate(self, call: LayerCall, ins: list[Tensor]) -> Tensor:
        rank = len(ins[0].shape) + 1
        axis = self._axis(int(call.config.get("axis", -1)), rank, call) - 1
        for t in ins:
            if len(t.shape) != rank - 1 or t.shape[:axis] != ins[0].shape[:axis] or t.shape[axis + 1 :] != ins[0].shape[
                    axis + 1 :]:
                raise ModelError(f"{self.where(call)}: cannot concatenate shapes {[list(t.shape) for t in ins]}")
        shape = list(ins[0].shape)
        shape[axis] = sum(t.shape[axis] for t in ins)
        y = self.new(tuple(shape), ins[0].dtype)
        outer = math.prod(shape[:axis])
        block = math.prod(shape[axis:])
        offset = 0
        for t in ins:
            inner = math.prod(t.shape[axis:])
            self.emit("copy", self.at(t), self.at(y, 4 * offset), _Rows(self.rows * outer), 1, inner, inner, 0, block,
                      0)
            offset += inner
        return y

    def _merge(self, call: LayerCall, ins: list[Tensor]) -> Tensor:
        cls = call.class_name
        if len({t.shape for t in ins}) != 1:
            raise UnsupportedModelError(
                f"{self.where(call)}: inputs of shapes {[list(t.shape) for t in ins]}; the compiled runtime merges "
                f"equal shapes only"
            )
        if cls == "Subtract" and len(ins) != 2:
            raise ModelError(f"{self.where(call)}: Subtract takes exactly 2 inputs, got {len(ins)}")
        op = {"Add": "add", "Subtract": "sub", "Multiply": "mul", "Average": "add", "Maximum": "max",
              "Minimum": "min"}[cls]
        y = self.new(ins[0].shape)
        count = _Rows(self.rows * y.size)
        self.emit("binary", self.at(ins[0]), self.at(ins[1]), self.at(y), count, abi.BINARY_CODES[op])
        for t in ins[2:]:
            self.emit("binary", self.at(y), self.at(t), self.at(y), count, abi.BINARY_CODES[op])
        if cls == "Average":
            self.emit("unary", self.at(y), self.at(y), count, abi.UNARY_CODES["scale"], 1.0 / len(ins), 0.0)
        return y

    # -------------------------------------------------------------- normalization
    def _BatchNormalization(self, call: LayerCall, ins: list[Tensor]) -> Tensor:
        x = ins[0]
        cfg = call.config
        axis = cfg.get("axis", -1)
        axis = axis[0] if isinstance(axis, list) and len(axis) == 1 else axis
        if not isinstance(axis, int):
            raise UnsupportedModelError(f"{self.where(call)}: BatchNormalization over axes {axis}")
        a = self._axis(axis, len(x.shape) + 1, call) - 1
        mean = call.weight("moving_mean")
        var = call.weight("moving_variance")
        assert mean is not None and var is not None
        gamma = call.weight("gamma") if cfg.get("scale", True) else None
        beta = call.weight("beta") if cfg.get("center", True) else None
        eps = float(cfg.get("epsilon", 1e-3))
        scale = (1.0 if gamma is None else gamma.astype(np.float64)) / np.sqrt(var.astype(np.float64) + eps)
        shift = (0.0 if beta is None else beta.astype(np.float64)) - mean.astype(np.float64) * scale
        y = self.new(x.shape)
        self.emit("affine", self.at(x), self.at(y), self.weight(scale), self.weight(shift),
                  _Rows(self.rows * math.prod(x.shape[:a])), x.shape[a], math.prod(x.shape[a + 1 :]))
        return y

    def _LayerNormalization(self, call: LayerCall, ins: list[Tensor]) -> Tensor:
        x = ins[0]
        cfg = call.config
        if cfg.get("rms_scaling"):
            raise UnsupportedModelError(f"{self.where(call)}: rms_scaling is not supported")
        declared = cfg.get("axis", -1)
        axes = sorted(self._axis(int(a), len(x.shape) + 1, call) - 1
                      for a in (declared if isinstance(declared, list) else [declared]))
        if axes != list(range(axes[0], len(x.shape))):
            raise UnsupportedModelError(f"{self.where(call)}: LayerNormalization over axes {cfg.get('axis')} "
                                        f"(only trailing axes)")
        size = math.prod(x.shape[axes[0] :])
        gamma = call.weight("gamma") if cfg.get("scale", True) else None
        beta = call.weight("beta") if cfg.get("center", True) else None
        y = self.new(x.shape)
        self.emit("layernorm", self.at(x), self.at(y), 0 if gamma is None else self.weight(gamma.reshape(-1)),
                  0 if beta is None else self.weight(beta.reshape(-1)), _Rows(self.rows * x.size // size), size,
                  float(cfg.get("epsilon", 1e-3)))
        return y

    # -------------------------------------------------------------- convolution and pooling
    def _spatial(self, call: LayerCall, x: Tensor, rank: int) -> tuple[int, int, int]:
        if len(x.shape) != rank + 1:
            raise ModelError(f"{self.where(call)}: expects a rank-{rank + 2} input, got shape [None, "
                             f"{', '.join(map(str, x.shape))}]")
        if rank == 1:
            return 1, x.shape[0], x.shape[1]
        return x.shape[0], x.shape[1], x.shape[2]

    def _conv_args(self, call: LayerCall, x: Tensor, rank: int, k: tuple[int, ...]) -> dict[str, int]:
        cfg = call.config
        where = self.where(call)
        strides = _pair(cfg.get("strides", 1), rank, "strides", where)
        dil = _pair(cfg.get("dilation_rate", 1), rank, "dilation_rate", where)
        if max(strides) > 1 and max(dil) > 1:
            raise UnsupportedModelError(f"{where}: strides and dilation both above 1")
        if int(cfg.get("groups", 1)) != 1:
            raise UnsupportedModelError(f"{where}: grouped convolution (groups={cfg['groups']})")
        padding = str(cfg.get("padding", "valid")).lower()
        in_h, in_w, in_c = self._spatial(call, x, rank)
        if rank == 1:
            strides, dil, k = (1, *strides), (1, *dil), (1, *k)
        out_h, pad_top = _conv_geometry(in_h, k[0], strides[0], dil[0], "valid" if rank == 1 else padding, where)
        out_w, pad_left = _conv_geometry(in_w, k[1], strides[1], dil[1], padding, where)
        return {"in_h": in_h, "in_w": in_w, "in_c": in_c, "k_h": k[0], "k_w": k[1], "stride_h": strides[0],
                "stride_w": strides[1], "dil_h": dil[0], "dil_w": dil[1], "pad_top": pad_top, "pad_left": pad_left,
                "out_h": out_h, "out_w": out_w}

    def _out_shape(self, g: dict[str, int], channels: int, rank: int) -> tuple[int, ...]:
        return (g["out_w"], channels) if rank == 1 else (g["out_h"], g["out_w"], channels)

    def _conv(self, call: LayerCall, ins: list[Tensor], rank: int) -> Tensor:
        x = ins[0]
        kernel = call.weight("kernel")
        assert kernel is not None
        filters = int(call.config["filters"])
        g = self._conv_args(call, x, rank, tuple(kernel.shape[:rank]))
        kernel = kernel.reshape(g["k_h"], g["k_w"], g["in_c"], filters)
        bias = call.weight("bias") if call.config.get("use_bias", True) else None
        act = self.activation_name(call.config.get("activation"))
        return self.conv(x, g, kernel, bias, act, rank)

    def conv(self, x: Tensor, g: dict[str, int], kernel: Array, bias: Array | None, act: str,
             rank: int) -> Tensor:
        filters = kernel.shape[-1]
        pointwise = g["k_h"] == g["k_w"] == g["stride_h"] == g["stride_w"] == 1 and not (g["pad_top"] or g["pad_left"])
        if pointwise:
            flat = Tensor(x.slot, (g["in_h"] * g["in_w"], g["in_c"]))
            y = self.dense(flat, kernel.reshape(g["in_c"], filters), bias, act)
            return Tensor(y.slot, self._out_shape(g, filters, rank))
        y = self.new(self._out_shape(g, filters, rank))
        k = g["k_h"] * g["k_w"] * g["in_c"]
        lo, hi = self.clamp(act) or (-math.inf, math.inf)
        scratch = self.scratch(0, g["out_h"] * g["out_w"] * k)
        self.emit("conv2d", self.at(x), self.weight(abi.pack_dense(kernel.reshape(k, filters), bias)), self.at(y),
                  scratch, _Rows(self.rows), g["in_h"], g["in_w"], g["in_c"], g["k_h"], g["k_w"], filters,
                  g["stride_h"], g["stride_w"], g["dil_h"], g["dil_w"], g["pad_top"], g["pad_left"], g["out_h"],
                  g["out_w"], lo, hi)
        return y if self.clamp(act) else self.activate(y, act)

    def _Conv1D(self, call: LayerCall, ins: list[Tensor]) -> Tensor:
        return self._conv(call, ins, 1)

    def _Conv2D(self, call: LayerCall, ins: list[Tensor]) -> Tensor:
        return self._conv(call, ins, 2)

    def depthwise(self, call: LayerCall, x: Tensor, rank: int, kernel: Array, bias: Array | None,
                  act: str) -> tuple[Tensor, dict[str, int]]:
        g = self._conv_args(call, x, rank, tuple(kernel.shape[:rank]))
        mult = kernel.shape[-1]
        kernel = kernel.reshape(g["k_h"] * g["k_w"], g["in_c"] * mult)
        packed = np.concatenate([np.zeros(g["in_c"] * mult) if bias is None else bias.reshape(-1), kernel.reshape(-1)])
        y = self.new(self._out_shape(g, g["in_c"] * mult, rank))
        lo, hi = self.clamp(act) or (-math.inf, math.inf)
        self.emit("depthwise2d", self.at(x), self.weight(packed), self.at(y), _Rows(self.rows), g["in_h"], g["in_w"],
                  g["in_c"], g["k_h"], g["k_w"], mult, g["stride_h"], g["stride_w"], g["dil_h"], g["dil_w"],
                  g["pad_top"], g["pad_left"], g["out_h"], g["out_w"], lo, hi)
        return (y if self.clamp(act) else self.activate(y, act)), g

    def _DepthwiseConv2D(self, call: LayerCall, ins: list[Tensor]) -> Tensor:
        kernel = call.weight("depthwise_kernel")
        assert kernel is not None
        bias = call.weight("bias") if call.config.get("use_bias", True) else None
        y, _ = self.depthwise(call, ins[0], 2, kernel, bias, self.activation_name(call.config.get("activation")))
        return y

    def _separable(self, call: LayerCall, ins: list[Tensor], rank: int) -> Tensor:
        dw = call.weight("depthwise_kernel")
        pw = call.weight("pointwise_kernel")
        assert dw is not None and pw is not None
        bias = call.weight("bias") if call.config.get("use_bias", True) else None
        mid, g = self.depthwise(call, ins[0], rank, dw, None, "linear")
        channels = g["in_c"] * dw.shape[-1]
        flat = Tensor(mid.slot, (g["out_h"] * g["out_w"], channels))
        act = self.activation_name(call.config.get("activation"))
        y = self.dense(flat, pw.reshape(channels, pw.shape[-1]), bias, act)
        return Tensor(y.slot, self._out_shape(g, pw.shape[-1], rank))

    def _SeparableConv1D(self, call: LayerCall, ins: list[Tensor]) -> Tensor:
        return self._separable(call, ins, 1)

    def _SeparableConv2D(self, call: LayerCall, ins: list[Tensor]) -> Tensor:
        return self._separable(call, ins, 2)

    def _pool(self, call: LayerCall, ins: list[Tensor], rank: int, mode: str) -> Tensor:
        x = ins[0]
        cfg = call.config
        where = self.where(call)
        size = _pair(cfg.get("pool_size", 2), rank, "pool_size", where)
        strides = _pair(cfg.get("strides") or size, rank, "strides", where)
        padding = str(cfg.get("padding", "valid")).lower()
        in_h, in_w, c = self._spatial(call, x, rank)
        if rank == 1:
            size, strides = (1, *size), (1, *strides)
        out_h, pad_top = _conv_geometry(in_h, size[0], strides[0], 1, "valid" if rank == 1 else padding, where)
        out_w, pad_left = _conv_geometry(in_w, size[1], strides[1], 1, padding, where)
        shape = (out_w, c) if rank == 1 else (out_h, out_w, c)
        y = self.new(shape)
        self.emit("pool2d", self.at(x), self.at(y), _Rows(self.rows), in_h, in_w, c, size[0], size[1], strides[0],
                  strides[1], pad_top, pad_left, out_h, out_w, abi.POOL_CODES[mode])
        return y

    def _MaxPooling1D(self, call: LayerCall, ins: list[Tensor]) -> Tensor:
        return self._pool(call, ins, 1, "max")

    def _MaxPooling2D(self, call: LayerCall, ins: list[Tensor]) -> Tensor:
        return self._pool(call, ins, 2, "max")

    def _AveragePooling1D(self, call: LayerCall, ins: list[Tensor]) -> Tensor:
        return self._pool(call, ins, 1, "avg")

    def _AveragePooling2D(self, call: LayerCall, ins: list[Tensor]) -> Tensor:
        return self._pool(call, ins, 2, "avg")

    def _global(self, call: LayerCall, ins: list[Tensor], rank: int, mode: str) -> Tensor:
        x = ins[0]
        if len(x.shape) != rank + 1:
            raise ModelError(f"{self.where(call)}: expects a rank-{rank + 2} input, got {list(x.shape)}")
        c = x.shape[-1]
        keep = bool(call.config.get("keepdims", False))
        y = self.new(((1,) * rank if keep else ()) + (c,))
        self.emit("global_pool", self.at(x), self.at(y), _Rows(self.rows), x.size // c, c, abi.POOL_CODES[mode])
        return y

    def _GlobalMaxPooling1D(self, call: LayerCall, ins: list[Tensor]) -> Tensor:
        return self._global(call, ins, 1, "max")

    def _GlobalMaxPooling2D(self, call: LayerCall, ins: list[Tensor]) -> Tensor:
        return self._global(call, ins, 2, "max")

    def _GlobalAveragePooling1D(self, call: LayerCall, ins: list[Tensor]) -> Tensor:
        return self._global(call, ins, 1, "avg")

    def _GlobalAveragePooling2D(self, call: LayerCall, ins: list[Tensor]) -> Tensor:
        return self._global(call, ins, 2, "avg")

    # -------------------------------------------------------------- embeddings and recurrent layers
    def _Embedding(self, call: LayerCall, ins: list[Tensor]) -> Tensor:
        x = ins[0]
        if call.config.get("mask_zero"):
            raise UnsupportedModelError(f"{self.where(call)}: mask_zero=True (masking) is not supported")
        if x.dtype != "int32":
            raise UnsupportedModelError(f"{self.where(call)}: token ids must come straight from a model input")
        table = call.weight("embeddings")
        assert table is not None
        vocab, dim = table.shape
        y = self.new((*x.shape, dim))
        self.emit("embedding", self.at(x), self.weight(table), self.at(y), _Rows(self.rows * x.size), vocab, dim)
        return y

    def rnn(self, call: LayerCall, cfg: dict[str, Any], x: Tensor, *, under: str | None = None,
            backwards: bool | None = None) -> Tensor:
        cell = {"SimpleRNN": "simple", "LSTM": "lstm", "GRU": "gru"}.get(str(cfg.get("__class__")))
        if cell is None:
            raise UnsupportedModelError(f"{self.where(call)}: wrapped layer {cfg.get('__class__')} is not an RNN")
        for option in ("stateful", "return_state", "time_major"):
            if cfg.get(option):
                raise UnsupportedModelError(f"{self.where(call)}: {option}=True is not supported")
        if len(x.shape) != 2:
            raise ModelError(f"{self.where(call)}: expects [batch, steps, features], got {list(x.shape)}")
        steps, in_dim = x.shape
        units = int(cfg["units"])
        gates = abi.GATES[cell]
        kernel = call.weight("kernel", under=under)
        recurrent = call.weight("recurrent_kernel", under=under)
        assert kernel is not None and recurrent is not None
        if kernel.shape != (in_dim, gates * units) or recurrent.shape != (units, gates * units):
            raise ModelError(f"{self.where(call)}: weights {kernel.shape}/{recurrent.shape} do not fit {cell} "
                             f"with {units} units on {in_dim} features")
        bias = call.weight("bias", under=under) if cfg.get("use_bias", True) else None
        reset_after = cell == "gru" and bool(cfg.get("reset_after", False))
        input_bias = recurrent_bias = None
        if bias is not None:
            if reset_after:
                if bias.shape != (2, gates * units):
                    raise ModelError(f"{self.where(call)}: GRU reset_after bias has shape {bias.shape}")
                input_bias, recurrent_bias = bias[0], bias[1]
            else:
                input_bias = bias.reshape(-1)
        wk, wr = [], []
        for i in range(gates):
            cols = slice(i * units, (i + 1) * units)
            wk.append(abi.pack_dense(kernel[:, cols], None if input_bias is None else input_bias[cols]))
            wr.append(abi.pack_dense(recurrent[:, cols], None if recurrent_bias is None else recurrent_bias[cols]))
        act = self.activation_name(cfg.get("activation", "tanh"))
        rec = self.activation_name(cfg.get("recurrent_activation", "sigmoid")) if cell != "simple" else act
        for name in (act, rec):
            if name in ("softmax", "log_softmax", "elu", "leaky_relu"):
                raise UnsupportedModelError(f"{self.where(call)}: activation {name} inside a recurrent cell")
        go_backwards = bool(cfg.get("go_backwards", False)) if backwards is None else backwards
        sequences = bool(cfg.get("return_sequences", False))
        flags = (abi.RNN_RETURN_SEQUENCES if sequences else 0) | (abi.RNN_GO_BACKWARDS if go_backwards else 0) | (
            abi.RNN_RESET_AFTER if reset_after else 0)
        y = self.new((steps, units) if sequences else (units,))
        scratch = self.scratch(abi.rnn_scratch_per_row(cell, steps, units))
        self.emit("rnn", abi.CELL_CODES[cell], self.at(x), self.weight(np.concatenate(wk)),
                  self.weight(np.concatenate(wr)), self.at(y), scratch, _Rows(self.rows), steps, in_dim, units, flags,
                  abi.UNARY_CODES[act], abi.UNARY_CODES[rec])
        return y

    def _SimpleRNN(self, call: LayerCall, ins: list[Tensor]) -> Tensor:
        return self.rnn(call, {**call.config, "__class__": call.class_name}, ins[0])

    _LSTM = _SimpleRNN
    _GRU = _SimpleRNN

    def _Bidirectional(self, call: LayerCall, ins: list[Tensor]) -> Tensor:
        inner = call.config["layer"]
        forward_cfg = {**inner.get("config", {}), "__class__": inner.get("class_name")}
        backward = call.config.get("backward_layer")
        backward_cfg = {**(backward or inner).get("config", {}), "__class__": (backward or inner).get("class_name")}
        go_backwards = bool(forward_cfg.get("go_backwards", False))
        fwd = self.rnn(call, forward_cfg, ins[0], under="forward")
        bwd = self.rnn(call, backward_cfg, ins[0], under="backward",
                       backwards=(not go_backwards) if backward is None else None)
        if forward_cfg.get("return_sequences"):  # Keras flips the backward sequence back into input order
            steps, units = bwd.shape
            flipped = self.new(bwd.shape)
            self.emit("copy", self.at(bwd, 4 * (steps - 1) * units), self.at(flipped), _Rows(self.rows), steps, units,
                      steps * units, -units, steps * units, units)
            bwd = flipped
        mode = call.config.get("merge_mode", "concat")
        if mode is None:
            raise UnsupportedModelError(f"{self.where(call)}: merge_mode=None (two outputs) is not supported")
        if mode == "concat":
            size = fwd.shape[-1]
            y = self.new((*fwd.shape[:-1], 2 * size))
            outer = _Rows(self.rows * fwd.size // size)
            self.emit("copy", self.at(fwd), self.at(y), outer, 1, size, size, 0, 2 * size, 0)
            self.emit("copy", self.at(bwd), self.at(y, 4 * size), outer, 1, size, size, 0, 2 * size, 0)
            return y
        op = {"sum": "add", "mul": "mul", "ave": "add"}.get(mode)
        if op is None:
            raise UnsupportedModelError(f"{self.where(call)}: merge_mode {mode!r}")
        y = self.new(fwd.shape)
        count = _Rows(self.rows * fwd.size)
        self.emit("binary", self.at(fwd), self.at(bwd), self.at(y), count, abi.BINARY_CODES[op])
        if mode == "ave":
            self.emit("unary", self.at(y), self.at(y), count, abi.UNARY_CODES["scale"], 0.5, 0.0)
        return y

    def _TimeDistributed(self, call: LayerCall, ins: list[Tensor]) -> Tensor:
        x = ins[0]
        inner = call.config["layer"]
        inner_call = LayerCall(call.layer, call.node, str(inner.get("class_name")), dict(inner.get("config", {})),
                               call.inputs, call.weights)
        if inner_call.class_name in ("TimeDistributed", "Bidirectional"):
            raise UnsupportedModelError(f"{self.where(call)}: nested {inner_call.class_name}")
        steps = x.shape[0]
        outer = self.rows
        self.rows = outer * steps
        try:
            y = self.lower(inner_call, [Tensor(x.slot, x.shape[1:], x.dtype)])
        finally:
            self.rows = outer
        return Tensor(y.slot, (steps, *y.shape), y.dtype)


# ---------------------------------------------------------------------- slot allocation
def _allocate(ops: list[Op], slots: list[Slot], inputs: list[Port],
              outputs: list[Port]) -> tuple[list[Op], list[Slot], list[Port]]:
    """Map virtual slots (one per tensor or scratch) onto fewer buffers by liveness.

    Model inputs and outputs get buffers of their own (``io``): a batch runs in row slices, and rows
    of later slices are still to be read (inputs) or already written (outputs) while a slice runs.
    Other buffers are reused once the last op reading their tensor has run; they grow to the
    largest tensor they hold.
    """
    io = {p.slot for p in (*inputs, *outputs)}
    first: dict[int, int] = {}
    last: dict[int, int] = {}
    for i, op in enumerate(ops):
        for arg in op.args:
            if isinstance(arg, _At):
                first.setdefault(arg.slot, i)
                last[arg.slot] = i
    physical: list[Slot] = []
    mapping: dict[int, int] = {}
    for v in sorted(io):
        mapping[v] = len(physical)
        physical.append(Slot(slots[v].per_row, slots[v].fixed, io=True))
    free: list[int] = []
    releases: dict[int, list[int]] = {}
    for v in sorted((s for s in first if s not in io), key=lambda s: (first[s], s)):
        start = first[v]
        for step in sorted(k for k in releases if k < start):
            free.extend(releases.pop(step))
        slot = slots[v]
        if free:
            # Prefer a buffer already large enough, else the largest one (it grows).
            fits = [p for p in free if physical[p].per_row >= slot.per_row and physical[p].fixed >= slot.fixed]
            width = lambda p: physical[p].per_row  # noqa: E731
            choice = min(fits, key=width) if fits else max(free, key=width)
            free.remove(choice)
            held = physical[choice]
            physical[choice] = Slot(max(held.per_row, slot.per_row), max(held.fixed, slot.fixed))
        else:
            physical.append(slot)
            choice = len(physical) - 1
        mapping[v] = choice
        releases.setdefault(last[v], []).append(choice)
    new_ops = [Op(op.kernel, [_At(mapping[a.slot], a.add, slots[a.slot].per_row if a.slot in io else 0)
                              if isinstance(a, _At) else a for a in op.args], op.layer)
               for op in ops]
    ports = [dataclasses.replace(p, slot=mapping[p.slot]) for p in (*inputs, *outputs)]
    return new_ops, physical, ports


def compile_graph(graph: Graph, source: str = "model") -> Plan:
    """Compile a layer graph into a :class:`Plan` (raises :class:`UnsupportedModelError`)."""
    return _Compiler(graph, source).compile()
