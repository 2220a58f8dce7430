"""The one reader of TF.js Layers artifacts: files, weights and the layer graph.

``read_layers_artifact`` checks a ``model.json`` and its shards; ``split_weights`` cuts the shards
into named arrays (dequantizing ``--quantize_float16`` / ``--quantize_uint8`` weights as tfjs
does); ``read_graph`` turns the topology into a :class:`Graph` of layer calls in topological order,
with each layer's weights attached. It reads what tfjs 4.22 reads (Keras 2 configs as the official
converter writes them, and this project's exporter's output) and the Keras 3 spellings of the same
fields (``batch_shape``, ``inbound_nodes`` with ``args``), for Sequential and functional models.
The compiled runtime, the numpy reference and the benchmark all start from here.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ._types import Array
from .errors import ModelError

#: Weight dtypes a TF.js Layers manifest may name -> their little-endian numpy dtype.
WEIGHT_DTYPES = {"float32": "<f4", "int32": "<i4", "uint8": "u1", "bool": "u1"}
#: Stored dtypes of quantized weights (the manifest's ``quantization.dtype``).
QUANTIZED_DTYPES = {"uint8": "u1", "uint16": "<u2", "float16": "<f2"}

Config = dict[str, Any]


# ---------------------------------------------------------------------- files and weights
def _stored_dtype(weight: Config, where: str) -> np.dtype[Any]:
    """The dtype of ``weight``'s bytes in the shard (its quantized dtype when it is quantized)."""
    quantization = weight.get("quantization")
    if quantization:
        stored = QUANTIZED_DTYPES.get(quantization.get("dtype"))
        if stored is None:
            raise ModelError(
                f"{where}: weight {weight.get('name')} is quantized as {quantization.get('dtype')!r}; "
                f"tfjs quantizes as {', '.join(QUANTIZED_DTYPES)}"
            )
        return np.dtype(stored)
    dtype = WEIGHT_DTYPES.get(weight.get("dtype", "float32"))
    if dtype is None:
        raise ModelError(
            f"{where}: weight {weight.get('name')} has dtype {weight.get('dtype')!r}; "
            f"supported: {', '.join(WEIGHT_DTYPES)}"
        )
    return np.dtype(dtype)


def read_layers_artifact(model_json: Path) -> tuple[Config, dict[str, bytes]]:
    """Read and check a TF.js artifact (Layers, or graph model); return (model.json content, {shard path: bytes}).

    Every failure names the file: unreadable or truncated JSON, a missing ``modelTopology`` or
    ``weightsManifest``, a missing shard, or shards whose total size differs from the manifest's.
    """
    try:
        text = model_json.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ModelError(f"{model_json}: cannot read model.json: {exc}") from exc
    try:
        spec = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ModelError(f"{model_json}: not valid JSON (corrupt or truncated?): {exc}") from exc
    if not isinstance(spec, dict) or "modelTopology" not in spec:
        raise ModelError(f"{model_json}: not a TF.js model.json (no modelTopology)")
    if spec.get("format") not in (None, "layers-model", "graph-model"):
        raise ModelError(f"{model_json}: format {spec.get('format')!r} is not a TF.js layers-model or graph-model")
    manifest = spec.get("weightsManifest")
    if not isinstance(manifest, list):
        raise ModelError(f"{model_json}: no weightsManifest list")
    shards: dict[str, bytes] = {}
    for group in manifest:
        expected = sum(
            math.prod(w.get("shape", [])) * _stored_dtype(w, str(model_json)).itemsize for w in group.get("weights", [])
        )
        actual = 0
        for rel in group.get("paths", []):
            shard_path = model_json.parent / rel
            try:
                shards[rel] = shard_path.read_bytes()
            except OSError as exc:
                raise ModelError(f"{model_json}: weight shard {shard_path} is missing or unreadable: {exc}") from exc
            actual += len(shards[rel])
        if actual != expected:
            raise ModelError(
                f"{model_json}: weight shards {group.get('paths')} hold {actual} bytes but the manifest's "
                f"weights need {expected} (a shard of the wrong size, or the wrong shard)"
            )
    return spec, shards


def split_weights(spec: Config, shards: dict[str, bytes]) -> dict[str, Array]:
    """Weights by manifest name from checked shards (see :func:`read_layers_artifact`).

    Each group's shards are concatenated and cut in ``weightsManifest`` order (little-endian).
    Quantized weights come back dequantized as tfjs does it (``q * scale + min`` for uint8/uint16,
    float16 widened), in their ``original_dtype`` (float32 unless the manifest says otherwise).
    The arrays are writable native-order copies.
    """
    weights: dict[str, Array] = {}
    for group in spec["weightsManifest"]:
        blob = b"".join(shards[p] for p in group["paths"])
        offset = 0
        for w in group["weights"]:
            stored = _stored_dtype(w, "model.json")
            count = math.prod(w["shape"])
            raw = np.frombuffer(blob, dtype=stored, count=count, offset=offset).reshape(w["shape"])
            offset += count * stored.itemsize
            quantization = w.get("quantization")
            if quantization:
                values = raw.astype(np.float32)
                if quantization["dtype"] != "float16":
                    values = values * np.float32(quantization["scale"]) + np.float32(quantization["min"])
                original = quantization.get("original_dtype", w.get("dtype", "float32"))
                weights[w["name"]] = values.astype(np.int32 if original == "int32" else np.float32)
            else:
                weights[w["name"]] = raw.astype(stored.newbyteorder("="), copy=True)
    return weights


# ---------------------------------------------------------------------- the layer graph
@dataclass(frozen=True)
class TensorRef:
    """Output ``index`` of the ``node``-th call of layer ``layer``."""

    layer: str
    node: int = 0
    index: int = 0


@dataclass(frozen=True)
class InputSpec:
    """A model input: its name, its shape without the batch axis (None = any) and its dtype."""

    name: str
    shape: tuple[int | None, ...]
    dtype: str
    ref: TensorRef


@dataclass
class LayerCall:
    """One call of a layer (a shared layer called twice gives two calls with the same weights)."""

    layer: str
    node: int
    class_name: str
    config: Config
    inputs: list[TensorRef]
    weights: dict[str, Array] = field(default_factory=dict)

    @property
    def key(self) -> tuple[str, int]:
        return (self.layer, self.node)

    def weight(self, role: str, *, under: str | None = None, required: bool = True) -> Array | None:
        """The weight whose name ends in ``role`` (``kernel``, ``bias``, ...), optionally below a
        path component containing ``under`` (``forward``/``backward`` of a Bidirectional)."""
        found = [
            array
            for path, array in self.weights.items()
            if path.split("/")[-1] == role and (under is None or any(under in part for part in path.split("/")[:-1]))
        ]
        if len(found) == 1:
            return found[0]
        if not found and not required:
            return None
        where = f" under {under!r}" if under else ""
        raise ModelError(
            f"layer {self.layer!r} ({self.class_name}): expected one weight named {role!r}{where}, "
            f"found {len(found)} among {sorted(self.weights) or 'none'}"
        )


@dataclass
class Graph:
    """A model's layer calls in topological order, its inputs and its outputs."""

    name: str
    keras_version: str | None
    inputs: list[InputSpec]
    outputs: list[TensorRef]
    calls: list[LayerCall]

    @property
    def keras_major(self) -> int:
        """Major version of the Keras that wrote the model (2 when unknown, as the converter's)."""
        try:
            return int(str(self.keras_version).split(".")[0])
        except ValueError:
            return 2

    def output_names(self) -> list[str]:
        names = [ref.layer for ref in self.outputs]
        return [n if names.count(n) == 1 else f"{n}:{ref.index}" for n, ref in zip(names, self.outputs, strict=True)]


def _model_config(topology: Config) -> tuple[str, Config, list[Config]]:
    model = topology.get("model_config", topology)
    class_name = model.get("class_name", "?")
    config = model.get("config", {})
    if isinstance(config, list):  # very old Sequential: the config is the layer list
        return class_name, {}, config
    return class_name, config, list(config.get("layers", []))


def _layer_name(layer: Config) -> str:
    name = layer.get("name") or layer.get("config", {}).get("name")
    if not name:
        raise ModelError(f"a {layer.get('class_name', '?')} layer has no name")
    return str(name)


def _batch_shape(config: Config) -> list[Any] | None:
    shape = config.get("batch_input_shape") or config.get("batch_shape")
    if shape is None and config.get("input_shape") is not None:  # Keras 2 shorthand
        shape = [None, *config["input_shape"]]
    return None if shape is None else list(shape)


def _input_dtype(config: Config) -> str:
    dtype = config.get("dtype", "float32")
    if isinstance(dtype, dict):  # Keras 3 DTypePolicy
        dtype = dtype.get("config", {}).get("name", "float32")
    return "int32" if str(dtype).startswith(("int", "uint")) else "float32"


def _history(value: Any) -> list[TensorRef]:
    """Tensor references in a Keras 3 node argument (nested lists / dicts of __keras_tensor__)."""
    if isinstance(value, dict):
        if value.get("class_name") == "__keras_tensor__":
            layer, node, index = value["config"]["keras_history"]
            return [TensorRef(str(layer), int(node), int(index))]
        return [ref for v in value.values() for ref in _history(v)]
    if isinstance(value, list):
        return [ref for v in value for ref in _history(v)]
    return []


def _inbound(layer: Config) -> list[list[TensorRef]]:
    """The inputs of each call of ``layer``, in node order."""
    calls = []
    for node in layer.get("inbound_nodes") or []:
        if isinstance(node, dict):  # Keras 3: {"args": [...], "kwargs": {...}}
            calls.append(_history(node.get("args", [])))
        else:  # Keras 2 / tfjs: [[layer, node, index, kwargs], ...]
            calls.append([TensorRef(str(e[0]), int(e[1]), int(e[2])) for e in node])
    return calls


def _endpoints(value: Any) -> list[TensorRef]:
    if not value:
        return []
    if isinstance(value[0], str):  # a single endpoint, unwrapped
        value = [value]
    return [TensorRef(str(e[0]), int(e[1]), int(e[2])) for e in value]


def _attach_weights(calls: list[LayerCall], weights: dict[str, Array]) -> None:
    """Give each call the weights whose name has its layer name as a path component.

    ``dense/kernel``, ``lstm/lstm_cell/kernel``, ``bidi/forward_lstm/lstm_cell/kernel`` and scoped
    names like ``model/dense/kernel:0`` all resolve to their layer; the key kept is the path
    below the layer name.
    """
    by_layer: dict[str, dict[str, Array]] = {}
    layer_names = {call.layer for call in calls}
    for name, array in weights.items():
        parts = name.split(":")[0].split("/")
        for i, part in enumerate(parts[:-1]):
            if part in layer_names:
                by_layer.setdefault(part, {})["/".join(parts[i + 1 :])] = array
                break
    for call in calls:
        call.weights = by_layer.get(call.layer, {})


#: TensorFlow dtypes of a graph model's signature -> what the model takes and gives.
SIGNATURE_DTYPES = {"DT_FLOAT": "float32", "DT_INT32": "int32", "DT_INT64": "int32", "DT_BOOL": "int32"}


def graph_model_signature(spec: Config, *, source: str = "model.json") -> tuple[list[Config], list[Config]]:
    """Inputs and outputs of a graph model from its ``signature``: [{name, shape (None = any), dtype}]."""
    signature = spec.get("signature") or {}
    ports: list[list[Config]] = []
    for side in ("inputs", "outputs"):
        entries = signature.get(side) or {}
        if not entries:
            raise ModelError(f"{source}: the graph model has no signature {side}; convert it from a SavedModel "
                             f"with a serving signature (tensorflowjs_converter --signature_name)")
        ports.append([
            {"name": name, "dtype": SIGNATURE_DTYPES.get(entry.get("dtype", "DT_FLOAT"), "float32"),
             "shape": [None if int(d.get("size", -1)) < 0 else int(d["size"])
                       for d in entry.get("tensorShape", {}).get("dim", [])]}
            for name, entry in entries.items()
        ])
    return ports[0], ports[1]


def read_graph(spec: Config, weights: dict[str, Array] | None = None, *, source: str = "model.json") -> Graph:
    """The layer graph of a ``model.json`` (``weights`` from :func:`split_weights` are attached)."""
    if spec.get("format") == "graph-model":
        raise ModelError(f"{source}: a graph model has no layers (it runs on tfjs's graph executor)")
    topology = spec.get("modelTopology")
    if not isinstance(topology, dict):
        raise ModelError(f"{source}: no modelTopology object")
    class_name, config, layers = _model_config(topology)
    keras_version = topology.get("keras_version")
    name = str(config.get("name", "model"))
    if not layers:
        raise ModelError(f"{source}: the model has no layers")
    if class_name == "Sequential":
        graph = _sequential(name, keras_version, layers, source)
    elif class_name in ("Model", "Functional"):
        graph = _functional(name, keras_version, config, layers, source)
    else:
        raise ModelError(f"{source}: model class {class_name!r} is not a Sequential or functional model")
    if weights is not None:
        _attach_weights(graph.calls, weights)
    return graph


def _sequential(name: str, keras_version: str | None, layers: list[Config], source: str) -> Graph:
    first = layers[0]
    shape = _batch_shape(first.get("config", {}))
    if shape is None:
        raise ModelError(f"{source}: the first layer declares no input shape (batch_input_shape)")
    if first.get("class_name") == "InputLayer":
        input_name, layers = _layer_name(first), layers[1:]
    else:
        input_name = f"{_layer_name(first)}_input"
    spec = InputSpec(input_name, tuple(shape[1:]), _input_dtype(first.get("config", {})), TensorRef(input_name))
    calls: list[LayerCall] = []
    previous = spec.ref
    for layer in layers:
        call = LayerCall(_layer_name(layer), 0, str(layer.get("class_name")), dict(layer.get("config", {})), [previous])
        calls.append(call)
        previous = TensorRef(call.layer)
    return Graph(name, keras_version, [spec], [previous], calls)


def _functional(name: str, keras_version: str | None, config: Config, layers: list[Config], source: str) -> Graph:
    inputs: list[InputSpec] = []
    pending: list[LayerCall] = []
    for layer in layers:
        layer_name, cls = _layer_name(layer), str(layer.get("class_name"))
        cfg = dict(layer.get("config", {}))
        if cls == "InputLayer":
            shape = _batch_shape(cfg)
            if shape is None:
                raise ModelError(f"{source}: input layer {layer_name!r} declares no shape")
            inputs.append(InputSpec(layer_name, tuple(shape[1:]), _input_dtype(cfg), TensorRef(layer_name)))
            continue
        for node, refs in enumerate(_inbound(layer)):
            pending.append(LayerCall(layer_name, node, cls, cfg, refs))
    declared = _endpoints(config.get("input_layers"))
    if declared:  # the model's own input order
        order = {ref.layer: i for i, ref in enumerate(declared)}
        inputs.sort(key=lambda s: order.get(s.name, len(order)))
    # Topological order (configs are usually ordered already; shared layers may not be).
    available = {(s.name, 0) for s in inputs}
    calls: list[LayerCall] = []
    while pending:
        ready = [c for c in pending if all((r.layer, r.node) in available for r in c.inputs)]
        if not ready:
            wanted = {(r.layer, r.node) for c in pending for r in c.inputs} - available
            missing = sorted(f"{layer}[{node}]" for layer, node in wanted)
            raise ModelError(f"{source}: the layer graph refers to unknown or cyclic inputs: {', '.join(missing)}")
        for call in ready:
            calls.append(call)
            available.add(call.key)
            pending.remove(call)
    outputs = _endpoints(config.get("output_layers"))
    if not outputs:
        raise ModelError(f"{source}: the functional model declares no output_layers")
    for ref in outputs:
        if (ref.layer, ref.node) not in available:
            raise ModelError(f"{source}: output {ref.layer!r} is not produced by any layer")
    return Graph(name, keras_version, inputs, outputs, calls)


def read_artifact_graph(model_json: Path) -> Graph:
    """Read, check and parse a ``model.json`` with its weights (see :func:`read_graph`)."""
    spec, shards = read_layers_artifact(model_json)
    return read_graph(spec, split_weights(spec, shards), source=str(model_json))
