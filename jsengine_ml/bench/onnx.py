"""The onnxruntime contender: an ONNX graph built with ``onnx.helper`` from the same weights.

Covers the Sequential layers of the Wine MLP and the digits CNN (Dense, Conv2D, MaxPooling2D,
Flatten; relu / softmax). Keras convolutions are NHWC, ONNX's NCHW: the input is transposed before
the first convolution, kernels go HWIO → OIHW, and activations go back to NHWC before Flatten so
the Dense weights match. onnx and onnxruntime come with the ``bench`` extra; without them the
contender is skipped with a note.
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np

from .._types import Array
from ..topology import Graph, LayerCall

Node = tuple[str, list[str], list[str], dict[str, Any]]


def unavailable() -> str | None:
    """Why the onnxruntime contender cannot run here, or None."""
    try:
        import onnx  # noqa: F401
        import onnxruntime  # type: ignore[import-untyped,unused-ignore]  # noqa: F401
    except Exception as exc:  # ImportError, or a protobuf clash raised at import
        return f"onnx/onnxruntime not importable ({type(exc).__name__}: {exc}); install jsengine-ml[bench]"
    return None


def _same_pads(k: int) -> tuple[int, int]:
    return (k - 1) // 2, (k - 1) - (k - 1) // 2


class _Builder:
    """Nodes and initializers of one graph, named uniquely."""

    def __init__(self) -> None:
        self.nodes: list[Node] = []
        self.inits: dict[str, Array] = {}
        self._ids = itertools.count()

    def const(self, name: str, array: Array) -> str:
        self.inits[name] = np.ascontiguousarray(array)
        return name

    def node(self, op: str, inputs: list[str], prefix: str, **attrs: Any) -> str:
        out = f"{prefix}_{next(self._ids)}"
        self.nodes.append((op, inputs, [out], attrs))
        return out

    def activation(self, x: str, name: str | None) -> str:
        if name in (None, "linear"):
            return x
        if name == "relu":
            return self.node("Relu", [x], "relu")
        if name == "softmax":
            return self.node("Softmax", [x], "softmax", axis=-1)
        raise NotImplementedError(f"activation {name!r}")


def _dense(b: _Builder, call: LayerCall, cur: str) -> str:
    cur = b.node("MatMul", [cur, b.const(f"{call.layer}_W", call.weights["kernel"])], "matmul")
    bias = call.weight("bias", required=False)
    if bias is not None:
        cur = b.node("Add", [cur, b.const(f"{call.layer}_b", bias)], "add")
    return b.activation(cur, call.config.get("activation"))


def _conv2d(b: _Builder, call: LayerCall, cur: str) -> str:
    cfg = call.config
    if tuple(cfg.get("strides", (1, 1))) != (1, 1) or tuple(cfg.get("dilation_rate", (1, 1))) != (1, 1):
        raise NotImplementedError("Conv2D with strides or dilation")
    kernel = call.weights["kernel"]  # kh, kw, cin, cout -> cout, cin, kh, kw
    kh, kw = kernel.shape[:2]
    pads = [0, 0, 0, 0]
    if cfg.get("padding") == "same":
        (top, bottom), (left, right) = _same_pads(kh), _same_pads(kw)
        pads = [top, left, bottom, right]
    inputs = [cur, b.const(f"{call.layer}_W", kernel.transpose(3, 2, 0, 1))]
    bias = call.weight("bias", required=False)
    if bias is not None:
        inputs.append(b.const(f"{call.layer}_b", bias))
    cur = b.node("Conv", inputs, "conv", kernel_shape=[kh, kw], pads=pads, strides=[1, 1])
    return b.activation(cur, cfg.get("activation"))


def _maxpool(b: _Builder, call: LayerCall, cur: str) -> str:
    pool = list(call.config["pool_size"])
    if call.config.get("padding", "valid") != "valid":
        raise NotImplementedError("MaxPooling2D with padding")
    return b.node("MaxPool", [cur], "pool", kernel_shape=pool, strides=list(call.config.get("strides") or pool))


def graph_nodes(graph: Graph) -> tuple[list[Node], dict[str, Array], int]:
    """(nodes, initializers, input width) of a Sequential graph; input ``x`` (N, width), output ``y``."""
    shape = [int(d or 0) for d in graph.inputs[0].shape]
    b = _Builder()
    cur, layout = "x", "flat"
    if len(shape) > 1:
        cur = b.node("Reshape", [cur, b.const("in_shape", np.array([-1, *shape], np.int64))], "reshape")
        layout = "NHWC"
    for call in graph.calls:
        if call.class_name in ("Conv2D", "MaxPooling2D") and layout == "NHWC":
            cur, layout = b.node("Transpose", [cur], "to_nchw", perm=[0, 3, 1, 2]), "NCHW"
        if call.class_name == "Dense":
            cur = _dense(b, call, cur)
        elif call.class_name == "Conv2D":
            cur = _conv2d(b, call, cur)
        elif call.class_name == "MaxPooling2D":
            cur = _maxpool(b, call, cur)
        elif call.class_name == "Flatten":
            if layout == "NCHW":
                cur = b.node("Transpose", [cur], "to_nhwc", perm=[0, 2, 3, 1])
            cur, layout = b.node("Flatten", [cur], "flatten", axis=1), "flat"
        else:
            raise NotImplementedError(f"layer {call.class_name} ({call.layer})")
    b.nodes.append(("Identity", [cur], ["y"], {}))
    return b.nodes, b.inits, int(np.prod(shape))


def build_onnx(graph: Graph) -> bytes:
    """The model as a serialized, checked ONNX model (opset 17)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    nodes, inits, width = graph_nodes(graph)
    body = helper.make_graph(
        [helper.make_node(op, ins, outs, **attrs) for op, ins, outs, attrs in nodes],
        "jsengine_ml_bench",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", width])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", None])],
        [numpy_helper.from_array(a, name=n) for n, a in inits.items()],
    )
    model = helper.make_model(body, opset_imports=[helper.make_opsetid("", 17)], producer_name="jsengine-ml-bench")
    model.ir_version = 8
    onnx.checker.check_model(model)
    return bytes(model.SerializeToString())


class OrtModel:
    """An onnxruntime session on one thread (intra- and inter-op), CPU provider."""

    def __init__(self, model_bytes: bytes):
        import onnxruntime as ort  # type: ignore[import-untyped,unused-ignore]

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        self.session: Any = ort.InferenceSession(model_bytes, opts, providers=["CPUExecutionProvider"])

    @classmethod
    def from_graph(cls, graph: Graph) -> OrtModel:
        return cls(build_onnx(graph))

    def predict(self, x: Any) -> Array:
        return np.asarray(self.session.run(["y"], {"x": np.ascontiguousarray(x, dtype=np.float32)})[0])

    def close(self) -> None:
        self.session = None
