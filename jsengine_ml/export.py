"""Export Keras 3 models to the TF.js Layers format (``model.json`` + weight shards).

No tensorflow / tensorflowjs is needed: the Keras 3 model config is rewritten into the Keras 2.x
form that ``tf.loadLayersModel`` of tfjs 4.22 parses, and the weights are written as little-endian
float32 shards under the names tfjs-layers looks up (``dense/kernel``, ``lstm/lstm_cell/kernel`` ...).

Only a verified set of layers is supported (see :data:`SUPPORTED_LAYERS`); anything else raises
:class:`~jsengine_ml.errors.UnsupportedLayerError`. Initializers, regularizers and constraints do not
matter for inference (the weights are always shipped), so unknown ones are replaced by neutral values.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np

from jsengine_ml.errors import ExportError, UnsupportedLayerError

__all__ = ["SUPPORTED_LAYERS", "keras_to_tfjs"]

Config = dict[str, Any]

# Keras activation name -> TF.js activation name (snake case; tfjs camel-cases it on load).
# Omitted on purpose: hard_sigmoid (Keras 3: relu6(x+3)/6, tfjs: clip(0.2x+0.5)), leaky_relu,
# exponential, hard_silu, ... which tfjs lacks or computes differently.
_ACTIVATIONS = {
    "linear": "linear",
    "relu": "relu",
    "relu6": "relu6",
    "sigmoid": "sigmoid",
    "tanh": "tanh",
    "softmax": "softmax",
    "log_softmax": "log_softmax",
    "elu": "elu",
    "selu": "selu",
    "softplus": "softplus",
    "softsign": "softsign",
    "swish": "swish",
    "silu": "swish",
    "gelu": "gelu",
    "mish": "mish",
}

# Keras 3 initializer class -> (tfjs class, config keys kept).
_INITIALIZERS = {
    "Zeros": ("Zeros", ()),
    "Ones": ("Ones", ()),
    "Constant": ("Constant", ("value",)),
    "RandomUniform": ("RandomUniform", ("minval", "maxval", "seed")),
    "RandomNormal": ("RandomNormal", ("mean", "stddev", "seed")),
    "TruncatedNormal": ("TruncatedNormal", ("mean", "stddev", "seed")),
    "VarianceScaling": ("VarianceScaling", ("scale", "mode", "distribution", "seed")),
    "GlorotUniform": ("GlorotUniform", ("seed",)),
    "GlorotNormal": ("GlorotNormal", ("seed",)),
    "HeUniform": ("HeUniform", ("seed",)),
    "HeNormal": ("HeNormal", ("seed",)),
    "LecunUniform": ("LeCunUniform", ("seed",)),
    "LecunNormal": ("LeCunNormal", ("seed",)),
    "Orthogonal": ("Orthogonal", ("gain", "seed")),
    "Identity": ("Identity", ("gain",)),
    "IdentityInitializer": ("Identity", ("gain",)),
}
_INITIALIZER_ALIASES = {
    "zeros": "Zeros",
    "ones": "Ones",
    "glorot_uniform": "GlorotUniform",
    "glorot_normal": "GlorotNormal",
    "he_uniform": "HeUniform",
    "he_normal": "HeNormal",
    "lecun_uniform": "LecunUniform",
    "lecun_normal": "LecunNormal",
    "orthogonal": "Orthogonal",
    "random_uniform": "RandomUniform",
    "random_normal": "RandomNormal",
    "truncated_normal": "TruncatedNormal",
    "identity": "Identity",
}
_CONSTRAINTS = {
    "MaxNorm": ("max_value", "axis"),
    "NonNeg": (),
    "UnitNorm": ("axis",),
    "MinMaxNorm": ("min_value", "max_value", "rate", "axis"),
}

_COMMON = ("name", "trainable", "dtype")
_DENSE_LIKE = (
    "activation",
    "use_bias",
    "kernel_initializer",
    "bias_initializer",
    "kernel_regularizer",
    "bias_regularizer",
    "activity_regularizer",
    "kernel_constraint",
    "bias_constraint",
)
_RNN = (
    "units",
    "activation",
    "recurrent_activation",
    "use_bias",
    "kernel_initializer",
    "recurrent_initializer",
    "bias_initializer",
    "kernel_regularizer",
    "recurrent_regularizer",
    "bias_regularizer",
    "activity_regularizer",
    "kernel_constraint",
    "recurrent_constraint",
    "bias_constraint",
    "dropout",
    "recurrent_dropout",
    "return_sequences",
    "return_state",
    "go_backwards",
    "stateful",
    "unroll",
)

# class name -> (config keys passed to tfjs besides name/trainable/dtype, allowed weight names)
SUPPORTED_LAYERS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "InputLayer": ((), ()),
    "Dense": (("units", *_DENSE_LIKE), ("kernel", "bias")),
    "Activation": (("activation",), ()),
    "Dropout": (("rate", "noise_shape", "seed"), ()),
    "BatchNormalization": (
        (
            "axis",
            "momentum",
            "epsilon",
            "center",
            "scale",
            "beta_initializer",
            "gamma_initializer",
            "moving_mean_initializer",
            "moving_variance_initializer",
            "beta_regularizer",
            "gamma_regularizer",
            "beta_constraint",
            "gamma_constraint",
        ),
        ("gamma", "beta", "moving_mean", "moving_variance"),
    ),
    "Concatenate": (("axis",), ()),
    "Add": ((), ()),
    "Multiply": ((), ()),
    "Average": ((), ()),
    "Maximum": ((), ()),
    "Minimum": ((), ()),
    "Conv2D": (
        ("filters", "kernel_size", "strides", "padding", "data_format", "dilation_rate", *_DENSE_LIKE),
        ("kernel", "bias"),
    ),
    "MaxPooling2D": (("pool_size", "strides", "padding", "data_format"), ()),
    "AveragePooling2D": (("pool_size", "strides", "padding", "data_format"), ()),
    "Flatten": (("data_format",), ()),
    "Reshape": (("target_shape",), ()),
    "LSTM": ((*_RNN, "unit_forget_bias"), ("kernel", "recurrent_kernel", "bias")),
    "GRU": ((*_RNN, "reset_after"), ("kernel", "recurrent_kernel", "bias")),
    "Embedding": (
        (
            "input_dim",
            "output_dim",
            "embeddings_initializer",
            "embeddings_regularizer",
            "activity_regularizer",
            "embeddings_constraint",
            "mask_zero",
        ),
        ("embeddings",),
    ),
    "GlobalAveragePooling1D": ((), ()),
    "GlobalAveragePooling2D": (("data_format",), ()),
    "GlobalMaxPooling1D": ((), ()),
    "GlobalMaxPooling2D": (("data_format",), ()),
}


def _supported_list() -> str:
    return ", ".join(sorted(SUPPORTED_LAYERS))


def _import_keras() -> Any:
    """Import keras 3.

    Keras 3 defaults to the tensorflow backend, which cannot import without tensorflow. When keras is
    not imported yet, no backend is chosen (KERAS_BACKEND unset, keras.json absent or naming tensorflow)
    and tensorflow is missing, an installed backend is selected: ``numpy`` (keras 3's numpy backend
    itself imports jax and scipy), else ``torch``. Any backend is enough to export.
    """
    if (
        "keras" not in sys.modules
        and "KERAS_BACKEND" not in os.environ
        and _keras_json_backend() in (None, "tensorflow")
        and not _installed("tensorflow")
    ):
        if _installed("jax") and _installed("scipy"):
            os.environ["KERAS_BACKEND"] = "numpy"
        elif _installed("torch"):
            os.environ["KERAS_BACKEND"] = "torch"
    try:
        import keras
    except Exception as exc:  # ImportError, or a backend failing to import
        raise ExportError(
            f"keras 3 is needed to export a model and could not be imported: {exc} (set KERAS_BACKEND to "
            "an installed backend: jax, torch or tensorflow; keras' numpy backend also needs jax and scipy)"
        ) from exc
    if not str(getattr(keras, "__version__", "0")).startswith("3."):
        raise ExportError(f"keras 3 is required, found keras {getattr(keras, '__version__', '?')}")
    return keras


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def _keras_json_backend() -> str | None:
    home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    try:
        with open(os.path.join(home, "keras.json"), encoding="utf-8") as fh:
            backend = json.load(fh).get("backend")
    except (OSError, ValueError, AttributeError):
        return None
    return backend if isinstance(backend, str) else None


def _version() -> str:
    try:
        from importlib.metadata import PackageNotFoundError, version

        return version("jsengine-ml")
    except PackageNotFoundError:
        return "dev"


# --------------------------------------------------------------------------- config normalisation


def _where(layer_name: str, class_name: str) -> str:
    return f"layer {layer_name!r} ({class_name})"


def _policy_dtype(value: Any) -> str | None:
    """The plain dtype string of a Keras 3 dtype policy dict (or of a plain dtype string)."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, dict):
        cfg = value.get("config") or {}
        name = cfg.get("name") if isinstance(cfg, dict) else None
        if isinstance(name, str):
            return name
    raise ExportError(f"unrecognised dtype policy {value!r}")


def _activation(value: Any, where: str) -> str:
    if value is None:
        return "linear"
    if isinstance(value, dict):  # a serialized function, e.g. {"class_name": "function", "config": "relu"}
        cfg = value.get("config")
        value = cfg if isinstance(cfg, str) else value.get("class_name")
    if not isinstance(value, str) or value not in _ACTIVATIONS:
        raise ExportError(
            f"{where}: activation {value!r} is not supported by the TF.js export "
            f"(supported: {', '.join(sorted(_ACTIVATIONS))})"
        )
    return _ACTIVATIONS[value]


def _initializer(value: Any) -> Config | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = {"class_name": _INITIALIZER_ALIASES.get(value, value), "config": {}}
    class_name = value.get("class_name")
    cfg = value.get("config") or {}
    if class_name not in _INITIALIZERS:
        # The weights are always loaded, so the initializer is irrelevant for inference.
        return {"class_name": "Zeros", "config": {}}
    tfjs_name, keys = _INITIALIZERS[class_name]
    out = {k: cfg[k] for k in keys if k in cfg}
    if tfjs_name == "Constant" and not isinstance(out.get("value"), (int, float)):
        return {"class_name": "Zeros", "config": {}}
    return {"class_name": tfjs_name, "config": out}


def _regularizer(value: Any) -> Config | None:
    if not isinstance(value, dict):
        return None
    cfg = value.get("config") or {}
    class_name = value.get("class_name")
    if class_name in ("L1", "L2", "L1L2"):
        return {
            "class_name": "L1L2",
            "config": {"l1": float(cfg.get("l1", 0.0)), "l2": float(cfg.get("l2", 0.0))},
        }
    return None  # irrelevant for inference


def _constraint(value: Any) -> Config | None:
    if not isinstance(value, dict) or value.get("class_name") not in _CONSTRAINTS:
        return None  # irrelevant for inference
    cfg = value.get("config") or {}
    keys = _CONSTRAINTS[value["class_name"]]
    return {"class_name": value["class_name"], "config": {k: cfg[k] for k in keys if k in cfg}}


def _require(cond: bool, where: str, what: str) -> None:
    if not cond:
        raise ExportError(f"{where}: {what} is not supported by the TF.js export")


def _convert_input_layer(cfg: Config, where: str) -> Config:
    shape = cfg.get("batch_shape", cfg.get("batch_input_shape"))
    if shape is None:
        raise ExportError(f"{where}: input layer without a batch shape")
    _require(not cfg.get("sparse"), where, "a sparse input")
    _require(not cfg.get("ragged"), where, "a ragged input")
    _require(not cfg.get("optional"), where, "an optional input")
    dtype = _policy_dtype(cfg.get("dtype")) or "float32"
    if dtype.startswith(("int", "uint")) or dtype == "bool":
        dtype = "int32"
    elif dtype.startswith(("float", "bfloat")):
        dtype = "float32"
    else:
        raise ExportError(f"{where}: input dtype {dtype!r} is not supported")
    return {"batch_input_shape": list(shape), "dtype": dtype, "sparse": False, "name": cfg["name"]}


def _convert_layer_config(class_name: str, cfg: Config) -> Config:
    """Normalise one Keras 3 layer config into the Keras 2.x form tfjs-layers parses."""
    where = _where(cfg.get("name", "?"), class_name)
    if class_name == "InputLayer":
        return _convert_input_layer(cfg, where)
    keys, _ = SUPPORTED_LAYERS[class_name]

    dtype = _policy_dtype(cfg.get("dtype")) or "float32"
    if dtype != "float32":
        raise ExportError(f"{where}: dtype policy {dtype!r} is not supported (only float32)")
    if cfg.get("quantization_config") is not None or cfg.get("lora_rank"):
        raise ExportError(f"{where}: quantized or LoRA-enabled layers are not supported")
    if cfg.get("data_format", "channels_last") != "channels_last":
        raise ExportError(
            f"{where}: data_format {cfg['data_format']!r} is not supported (only channels_last)"
        )
    if cfg.get("keepdims"):
        raise ExportError(f"{where}: keepdims=True is not supported")
    if class_name == "Conv2D":
        _require(cfg.get("groups", 1) == 1, where, "groups != 1")
        _require(cfg.get("padding") in ("valid", "same"), where, f"padding {cfg.get('padding')!r}")
    if class_name == "BatchNormalization":
        _require(not cfg.get("renorm"), where, "renorm=True")
        axis = cfg.get("axis", -1)
        if isinstance(axis, (list, tuple)):
            _require(len(axis) == 1, where, f"axis {axis!r}")
            cfg = {**cfg, "axis": axis[0]}
    if class_name in ("LSTM", "GRU"):
        _require(not cfg.get("stateful"), where, "stateful=True")
        _require(not cfg.get("return_state"), where, "return_state=True")
        if class_name == "GRU":
            _require(
                not cfg.get("reset_after", True),
                where,
                "reset_after=True (tfjs GRUCell only implements reset_after=False)",
            )

    out: Config = {"name": cfg["name"], "trainable": bool(cfg.get("trainable", True)), "dtype": "float32"}
    for key in keys:
        if key not in cfg:
            continue
        value = cfg[key]
        if key.endswith("activation"):
            value = _activation(value, where)
        elif key.endswith("initializer"):
            value = _initializer(value)
        elif key.endswith("regularizer"):
            value = _regularizer(value)
        elif key.endswith("constraint"):
            value = _constraint(value)
        elif isinstance(value, tuple):
            value = list(value)
        out[key] = value
    if class_name == "GRU":
        out["reset_after"] = False
    return out


def _check_layer_class(keras: Any, layer_name: str, entry: Config, layer_obj: Any) -> str:
    class_name = entry.get("class_name")
    if class_name in ("Functional", "Sequential", "Model") or isinstance(layer_obj, keras.Model):
        raise ExportError(
            f"{_where(layer_name, str(class_name))}: nested models are not supported by the TF.js export; "
            "rebuild the model with the inner model's layers inlined"
        )
    if class_name == "InputLayer" and layer_obj is None:
        return class_name  # Keras 3 Sequential models do not list their InputLayer in model.layers
    builtin = getattr(keras.layers, str(class_name), None)
    if class_name not in SUPPORTED_LAYERS or layer_obj is None or type(layer_obj) is not builtin:
        shown = type(layer_obj).__name__ if layer_obj is not None else class_name
        hint = ""
        if not isinstance(layer_obj, keras.layers.Layer):
            hint = (
                " (a keras.ops operation recorded in the functional graph; Embedding(mask_zero=True) "
                "adds one in functional models, use a Sequential model for masking)"
            )
        raise UnsupportedLayerError(
            f"{_where(layer_name, str(shown))} is not supported by the TF.js export{hint}; "
            f"supported layer classes: {_supported_list()}"
        )
    return str(class_name)


# --------------------------------------------------------------------------- inbound nodes


def _keras_tensor_history(value: Any, where: str) -> list[Any]:
    if isinstance(value, dict) and value.get("class_name") == "__keras_tensor__":
        history = value["config"]["keras_history"]
        return [history[0], int(history[1]), int(history[2]), {}]
    raise ExportError(f"{where}: a call argument {value!r} that is not a tensor is not supported")


def _flatten_tensors(value: Any, where: str) -> list[list[Any]]:
    if isinstance(value, (list, tuple)):
        return [item for v in value for item in _flatten_tensors(v, where)]
    return [_keras_tensor_history(value, where)]


def _contains_tensor(value: Any) -> bool:
    if isinstance(value, dict):
        return value.get("class_name") == "__keras_tensor__" or any(
            _contains_tensor(v) for v in value.values()
        )
    if isinstance(value, (list, tuple)):
        return any(_contains_tensor(v) for v in value)
    return False


def _convert_inbound_nodes(nodes: list[Any], where: str) -> list[list[list[Any]]]:
    """Keras 3 ``{"args": [...], "kwargs": {...}}`` nodes -> Keras 2 ``[[[layer, node, tensor, {}]]]``."""
    out = []
    for node in nodes:
        if isinstance(node, list):  # already Keras 2 style
            out.append([[*list(item[:3]), {}] for item in node])
            continue
        kwargs = node.get("kwargs") or {}
        if _contains_tensor(kwargs):
            raise ExportError(
                f"{where}: tensors passed as keyword arguments ({sorted(kwargs)}) are not supported"
            )
        out.append(_flatten_tensors(node.get("args") or [], where))
    return out


def _endpoint_list(value: Any, what: str) -> list[list[Any]]:
    if isinstance(value, dict):
        raise ExportError(f"models with dict {what} are not supported; use a list")
    if isinstance(value, list) and value and isinstance(value[0], str):
        value = [value]
    return [[v[0], int(v[1]), int(v[2])] for v in value]


# --------------------------------------------------------------------------- topology


def _layers_by_name(model: Any) -> dict[str, Any]:
    return {layer.name: layer for layer in model.layers}


def _convert_topology(keras: Any, model: Any) -> Config:
    try:
        model_json = json.loads(model.to_json())
    except Exception as exc:
        raise ExportError(f"could not serialize the model config: {exc}") from exc
    class_name = model_json.get("class_name")
    cfg = model_json.get("config") or {}
    objects = _layers_by_name(model)

    if class_name == "Sequential":
        layers_out = []
        entries = cfg.get("layers", [])
        for i, entry in enumerate(entries):
            lname = entry.get("config", {}).get("name", "?")
            cls = _check_layer_class(keras, lname, entry, objects.get(lname))
            layer_cfg = _convert_layer_config(cls, entry["config"])
            if i == 0 and cls != "InputLayer":
                shape = cfg.get("build_input_shape")
                if shape is None:
                    raise ExportError(
                        "the Sequential model has no input shape; build it or start it with keras.Input"
                    )
                layers_out.append(
                    {
                        "class_name": "InputLayer",
                        "config": {
                            "batch_input_shape": list(shape),
                            "dtype": "float32",
                            "sparse": False,
                            "name": f"{cfg.get('name', 'sequential')}_input",
                        },
                    }
                )
            layers_out.append({"class_name": cls, "config": layer_cfg})
        if not layers_out:
            raise ExportError("the Sequential model has no layers")
        return {
            "class_name": "Sequential",
            "config": {"name": cfg.get("name", "sequential"), "layers": layers_out},
        }

    if class_name in ("Functional", "Model"):
        layers_out = []
        for entry in cfg.get("layers", []):
            lname = entry.get("name") or entry.get("config", {}).get("name", "?")
            cls = _check_layer_class(keras, lname, entry, objects.get(lname))
            layers_out.append(
                {
                    "class_name": cls,
                    "config": _convert_layer_config(cls, entry["config"]),
                    "name": lname,
                    "inbound_nodes": _convert_inbound_nodes(
                        entry.get("inbound_nodes", []), _where(lname, cls)
                    ),
                }
            )
        return {
            "class_name": "Model",
            "config": {
                "name": cfg.get("name", "model"),
                "layers": layers_out,
                "input_layers": _endpoint_list(cfg.get("input_layers", []), "inputs"),
                "output_layers": _endpoint_list(cfg.get("output_layers", []), "outputs"),
            },
        }

    raise ExportError(
        f"model class {class_name!r} is not supported; only Sequential and functional models "
        "(subclassed models have no serializable graph)"
    )


# --------------------------------------------------------------------------- weights


def _collect_weights(keras: Any, model: Any) -> list[tuple[str, np.ndarray]]:
    out: list[tuple[str, np.ndarray]] = []
    seen: set[str] = set()
    for layer in model.layers:
        class_name = type(layer).__name__
        allowed = SUPPORTED_LAYERS.get(class_name, ((), ()))[1]
        prefix = layer.name
        if class_name in ("LSTM", "GRU"):
            prefix = f"{layer.name}/{layer.cell.name}"  # what the official converter writes
        for var in layer.weights:
            if var.name not in allowed:
                raise ExportError(
                    f"{_where(layer.name, class_name)}: unexpected weight {var.name!r} "
                    f"(expected {', '.join(allowed) or 'none'})"
                )
            name = f"{prefix}/{var.name}"
            if name in seen:
                raise ExportError(f"duplicate weight name {name!r}")
            seen.add(name)
            value = np.asarray(keras.ops.convert_to_numpy(var))
            if np.issubdtype(value.dtype, np.integer) or value.dtype == np.bool_:
                value = value.astype("<i4")
            else:
                value = value.astype("<f4")
            out.append((name, value))
    return out


def _write_shards(weights: list[tuple[str, np.ndarray]], out_dir: Path, shard_size: int) -> list[str]:
    data = b"".join(np.ascontiguousarray(v).tobytes() for _, v in weights)
    if not data:
        return []
    chunks = [data[i : i + shard_size] for i in range(0, len(data), shard_size)]
    paths = []
    for i, chunk in enumerate(chunks, start=1):
        fname = f"group1-shard{i}of{len(chunks)}.bin"
        (out_dir / fname).write_bytes(chunk)
        paths.append(fname)
    return paths


# --------------------------------------------------------------------------- public API


def keras_to_tfjs(
    model_or_path: Any,
    out_dir: str | os.PathLike[str],
    *,
    shard_size_bytes: int = 4 * 1024 * 1024,
) -> Path:
    """Write ``model.json`` and ``group1-shard*of*.bin`` for a Keras 3 model; return the model.json path.

    ``model_or_path`` is a ``keras.Model`` (Sequential or functional) or the path of a ``.keras`` file.
    Raises :class:`UnsupportedLayerError` for a layer outside :data:`SUPPORTED_LAYERS` and
    :class:`ExportError` for any other problem.
    """
    if not isinstance(shard_size_bytes, int) or shard_size_bytes < 4:
        raise ExportError(f"shard_size_bytes must be an int >= 4, got {shard_size_bytes!r}")
    keras = _import_keras()
    if isinstance(model_or_path, (str, os.PathLike)):
        path = Path(model_or_path)
        if not path.is_file():
            raise ExportError(f"no such model file: {path}")
        try:
            model = keras.models.load_model(path, compile=False)
        except Exception as exc:
            raise ExportError(f"could not load Keras model {path}: {exc}") from exc
    else:
        model = model_or_path
    if not isinstance(model, keras.Model):
        raise ExportError(f"expected a keras.Model or a .keras path, got {type(model).__name__}")
    if not model.built:
        raise ExportError("the model is not built; call it on data or give it an input shape first")

    topology = _convert_topology(keras, model)
    weights = _collect_weights(keras, model)

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for stale in out.glob("group1-shard*of*.bin"):
        stale.unlink()
    paths = _write_shards(weights, out, shard_size_bytes)
    specs = [
        {"name": n, "shape": list(v.shape), "dtype": "int32" if v.dtype.kind == "i" else "float32"}
        for n, v in weights
    ]
    model_json = {
        "format": "layers-model",
        "generatedBy": f"jsengine-ml {_version()}",
        "convertedBy": None,
        "modelTopology": {
            "class_name": topology["class_name"],
            "config": topology["config"],
            "keras_version": keras.__version__,
            "backend": keras.backend.backend(),
        },
        "weightsManifest": [{"paths": paths, "weights": specs}],
    }
    target = out / "model.json"
    target.write_text(json.dumps(model_json, indent=None, separators=(",", ":")), encoding="utf-8")
    return target
