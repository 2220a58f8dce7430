"""Export Keras 3 models to the TF.js Layers format (``model.json`` + weight shards).

No tensorflow / tensorflowjs is needed: the Keras 3 model config is rewritten into the Keras 2.x
form that ``tf.loadLayersModel`` of tfjs 4.22 parses, and the weights are written as little-endian
float32 shards under the names tfjs-layers looks up. ``modelTopology.keras_version`` records the
Keras that made the model (e.g. ``"3.15.1"``); readers use its major version where Keras 2 and 3
differ (``hard_sigmoid``).

Only a verified set of layers is supported (see :data:`SUPPORTED_LAYERS`); anything else raises
:class:`~jsengine_ml.errors.UnsupportedLayerError`. Initializers, regularizers and constraints do not
matter for inference (the weights are always shipped), so unknown ones are replaced by neutral values.

Weight names (``weightsManifest``), by layer type::

    Dense, Conv1D/2D, BatchNormalization, ...  <layer>/<weight>              dense/kernel
    DepthwiseConv2D                            <layer>/depthwise_kernel      (Keras 3 calls it "kernel")
    SimpleRNN, LSTM, GRU                       <layer>/<cell>/<weight>       lstm/lstm_cell/kernel
    Bidirectional(RNN named R)                 <bidir>/forward_R/<cell>/<weight>, <bidir>/backward_R/<cell>/<weight>
    TimeDistributed(layer)                     <td>/<weight>                 time_distributed/kernel

``<cell>`` is the Keras cell name (``simple_rnn_cell``, ``lstm_cell``, ``gru_cell``); tfjs drops that
segment when it matches names. ``R`` is the wrapped layer's name without Keras 3's ``forward_``
prefix: it is the name the exported ``Bidirectional`` config gives its ``layer``, and tfjs prefixes
it again with ``forward_`` / ``backward_``.

Rewritten on export (tfjs computes the same thing):

* ``GlobalAveragePooling1D/2D`` and ``GlobalMaxPooling1D/2D`` with ``keepdims=True`` become the
  pooling layer (renamed ``<name>_pool``, or ``<name>_pool_2`` ... when taken) followed by a
  ``Reshape`` named ``<name>`` to ``(1, C)`` / ``(1, 1, C)``: tfjs 4.22's global pooling layers
  have no ``keepdims``.
* ``SpatialDropout2D`` becomes ``Dropout`` (both are the identity at inference; tfjs has no
  ``SpatialDropout2D``).
* ``LeakyReLU(negative_slope=a)`` becomes tfjs' ``LeakyReLU(alpha=a)``; ``silu`` becomes ``swish``.
* A ``-1`` in a ``Reshape`` target shape is replaced by the size Keras inferred (tfjs leaves it
  unknown in the symbolic shape, so the next layer could not build).

Exported although tfjs 4.22 cannot run them (a runtime that reads the topology itself can):

* ``GRU`` (also inside ``Bidirectional``) with ``reset_after=True``, Keras 3's default, with its
  ``(2, 3 * units)`` bias: ``tf.loadLayersModel`` refuses it ("GRUCell does not support
  reset_after parameter set to true").
* ``Conv1D(padding="causal")``: tfjs loads it and throws on predict ("The support for CAUSAL
  padding mode in conv1dWithBias is not implemented yet").
* ``Subtract`` and ``SeparableConv1D``: tfjs 4.22 has no such layer class ("Unknown layer").
* ``ELU(alpha != 1)``: tfjs refuses non-default alpha values.
* ``Softmax`` over another axis than the last: tfjs loads it and throws on predict ("Softmax along
  a non-last dimension is not yet supported").

Computed differently by tfjs: the ``hard_sigmoid`` activation. Keras 3 computes
``relu6(x + 3) / 6`` (= ``clip(x / 6 + 0.5, 0, 1)``), tfjs (like Keras 2) ``clip(0.2 * x + 0.5, 0, 1)``.
It is exported as ``hard_sigmoid``; tfjs' predictions differ wherever ``0 < |x| < 3``.

Refused because tfjs would silently compute something else: ``DepthwiseConv2D`` with
``dilation_rate != 1`` (tfjs ignores it), ``BatchNormalization`` over another axis than the last
(tfjs 4.22's cpu kernel broadcasts the statistics along the last axis whatever ``axis`` says),
``ReLU`` with ``negative_slope`` or ``threshold``, ``LayerNormalization(rms_scaling=True)``. Also
refused: ``TimeDistributed`` around a recurrent layer or a wrapper (tfjs cannot build it), and a
``Bidirectional`` whose ``backward_layer`` is not its forward layer run backwards.
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

from ._types import Array

__all__ = ["SUPPORTED_LAYERS", "keras_to_tfjs"]

Config = dict[str, Any]

# Keras activation name -> TF.js activation name (snake case; tfjs camel-cases it on load).
# hard_sigmoid is exported although tfjs computes it differently (see the module docstring).
# Omitted: leaky_relu, exponential, hard_silu, celu, glu, ... which tfjs 4.22 lacks.
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
    "hard_sigmoid": "hard_sigmoid",
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
_CONV_BASE = (
    "kernel_size",
    "strides",
    "padding",
    "data_format",
    "dilation_rate",
    "activation",
    "use_bias",
    "bias_initializer",
    "bias_regularizer",
    "activity_regularizer",
    "bias_constraint",
)
_CONV = ("filters", *_CONV_BASE, "kernel_initializer", "kernel_regularizer", "kernel_constraint")
_DEPTHWISE = ("depth_multiplier", "depthwise_initializer", "depthwise_regularizer", "depthwise_constraint")
_SEPARABLE = (
    "filters",
    *_CONV_BASE,
    *_DEPTHWISE,
    "pointwise_initializer",
    "pointwise_regularizer",
    "pointwise_constraint",
)
_POOL_1D = ("pool_size", "strides", "padding")
_POOL_2D = (*_POOL_1D, "data_format")
_NORM = (
    "axis",
    "epsilon",
    "center",
    "scale",
    "beta_initializer",
    "gamma_initializer",
    "beta_regularizer",
    "gamma_regularizer",
)
_RNN_BASE = (
    "units",
    "activation",
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
_RNN = (*_RNN_BASE, "recurrent_activation")
_RNN_WEIGHTS = ("kernel", "recurrent_kernel", "bias")

# class name -> (config keys passed to tfjs besides name/trainable/dtype, allowed Keras weight names)
SUPPORTED_LAYERS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "InputLayer": ((), ()),
    # core
    "Dense": (("units", *_DENSE_LIKE), ("kernel", "bias")),
    "Activation": (("activation",), ()),
    "Dropout": (("rate", "noise_shape", "seed"), ()),
    "SpatialDropout1D": (("rate", "seed"), ()),
    "SpatialDropout2D": (("rate", "seed"), ()),  # exported as a tfjs Dropout
    "Flatten": (("data_format",), ()),
    "Reshape": (("target_shape",), ()),
    "Permute": (("dims",), ()),
    "RepeatVector": (("n",), ()),
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
    # convolution and pooling
    "Conv1D": (_CONV, ("kernel", "bias")),
    "Conv2D": (_CONV, ("kernel", "bias")),
    "DepthwiseConv2D": ((*_CONV_BASE, *_DEPTHWISE), ("kernel", "bias")),  # kernel -> depthwise_kernel
    "SeparableConv1D": (_SEPARABLE, ("depthwise_kernel", "pointwise_kernel", "bias")),
    "SeparableConv2D": (_SEPARABLE, ("depthwise_kernel", "pointwise_kernel", "bias")),
    "MaxPooling1D": (_POOL_1D, ()),
    "AveragePooling1D": (_POOL_1D, ()),
    "MaxPooling2D": (_POOL_2D, ()),
    "AveragePooling2D": (_POOL_2D, ()),
    "GlobalAveragePooling1D": ((), ()),
    "GlobalMaxPooling1D": ((), ()),
    "GlobalAveragePooling2D": (("data_format",), ()),
    "GlobalMaxPooling2D": (("data_format",), ()),
    # normalization
    "BatchNormalization": (
        (
            *_NORM,
            "momentum",
            "moving_mean_initializer",
            "moving_variance_initializer",
            "beta_constraint",
            "gamma_constraint",
        ),
        ("gamma", "beta", "moving_mean", "moving_variance"),
    ),
    "LayerNormalization": (_NORM, ("gamma", "beta")),
    # activation layers
    "ReLU": (("max_value",), ()),
    "LeakyReLU": (("negative_slope",), ()),  # tfjs: alpha
    "PReLU": (("alpha_initializer", "alpha_regularizer", "alpha_constraint", "shared_axes"), ("alpha",)),
    "ELU": (("alpha",), ()),
    "Softmax": (("axis",), ()),
    # recurrent and wrappers
    "SimpleRNN": (_RNN_BASE, _RNN_WEIGHTS),
    "LSTM": ((*_RNN, "unit_forget_bias"), _RNN_WEIGHTS),
    "GRU": ((*_RNN, "reset_after"), _RNN_WEIGHTS),
    "Bidirectional": (("merge_mode",), ()),  # + "layer"; weights are the wrapped RNN's
    "TimeDistributed": ((), ()),  # + "layer"; weights are the wrapped layer's
    # merging
    "Concatenate": (("axis",), ()),
    "Add": ((), ()),
    "Subtract": ((), ()),
    "Multiply": ((), ()),
    "Average": ((), ()),
    "Maximum": ((), ()),
    "Minimum": ((), ()),
}

_RNN_LAYERS = frozenset({"SimpleRNN", "LSTM", "GRU"})
#: Layers TimeDistributed may wrap (tfjs' TimeDistributed cannot build recurrent layers).
_TIME_DISTRIBUTABLE = frozenset(
    {
        "Dense",
        "Activation",
        "Dropout",
        "Flatten",
        "RepeatVector",
        "Conv1D",
        "Conv2D",
        "DepthwiseConv2D",
        "SeparableConv2D",
        "MaxPooling1D",
        "AveragePooling1D",
        "MaxPooling2D",
        "AveragePooling2D",
        "GlobalAveragePooling1D",
        "GlobalMaxPooling1D",
        "GlobalAveragePooling2D",
        "GlobalMaxPooling2D",
        "BatchNormalization",
        "LayerNormalization",
        "ReLU",
        "LeakyReLU",
        "PReLU",
        "ELU",
        "Softmax",
    }
)
#: Global pooling layer -> number of pooled axes (a keepdims=True export reshapes to that many 1s).
_GLOBAL_POOLING = {
    "GlobalAveragePooling1D": 1,
    "GlobalMaxPooling1D": 1,
    "GlobalAveragePooling2D": 2,
    "GlobalMaxPooling2D": 2,
}
_TFJS_CLASS = {"SpatialDropout2D": "Dropout"}
_RENAMED_KEYS = {"LeakyReLU": {"negative_slope": "alpha"}}
_RENAMED_WEIGHTS = {"DepthwiseConv2D": {"kernel": "depthwise_kernel"}}
_PADDINGS = {"Conv1D": ("valid", "same", "causal")}
_MERGE_MODES = ("concat", "sum", "mul", "ave", None)


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


def _check_common(cfg: Config, where: str) -> None:
    dtype = _policy_dtype(cfg.get("dtype")) or "float32"
    if dtype != "float32":
        raise ExportError(f"{where}: dtype policy {dtype!r} is not supported (only float32)")
    if cfg.get("quantization_config") is not None or cfg.get("lora_rank"):
        raise ExportError(f"{where}: quantized or LoRA-enabled layers are not supported")
    if cfg.get("data_format", "channels_last") != "channels_last":
        raise ExportError(
            f"{where}: data_format {cfg['data_format']!r} is not supported (only channels_last)"
        )


def _input_rank(obj: Any) -> int | None:
    """The rank of a layer's (first call's) input, batch axis included, when Keras knows it."""
    try:
        return len(obj.input.shape)
    except Exception:  # never called (a wrapped layer), or no layer object
        spec = getattr(obj, "input_spec", None)
        ndim = getattr(spec, "ndim", None)
        return ndim if isinstance(ndim, int) else None


def _static_output_shape(obj: Any) -> list[int] | None:
    """A layer's (first call's) output shape without the batch axis, when every dimension is known."""
    try:
        shape = list(obj.output.shape[1:])
    except Exception:
        return None
    return shape if all(isinstance(d, int) for d in shape) else None


def _check_batch_norm_axis(axis: Any, obj: Any, where: str) -> None:
    """tfjs 4.22 (cpu backend) broadcasts the statistics along the last axis whatever ``axis`` says."""
    if axis == -1:
        return
    rank = _input_rank(obj)
    if rank is None or axis != rank - 1:
        raise ExportError(
            f"{where}: axis {axis} (not the last axis) is not supported by the TF.js export: tfjs 4.22 "
            "applies the moving statistics along the last axis and would compute another output; "
            "normalize the last axis (Permute around the layer if needed)"
        )


def _check_class_config(class_name: str, cfg: Config, where: str, obj: Any = None) -> Config:
    """Refuse what tfjs (or the export) cannot express; return the config with Keras 3 quirks undone."""
    if class_name in ("Conv1D", "Conv2D"):
        _require(cfg.get("groups", 1) == 1, where, "groups != 1")
    if "padding" in SUPPORTED_LAYERS[class_name][0]:
        allowed = _PADDINGS.get(class_name, ("valid", "same"))
        _require(cfg.get("padding", "valid") in allowed, where, f"padding {cfg.get('padding')!r}")
    if class_name == "DepthwiseConv2D":
        dilation = cfg.get("dilation_rate", 1)
        if any(d != 1 for d in (dilation if isinstance(dilation, (list, tuple)) else [dilation])):
            raise ExportError(
                f"{where}: dilation_rate {dilation!r} is not supported by the TF.js export: tfjs 4.22's "
                "DepthwiseConv2D ignores dilation and would compute another output; use dilation_rate=1"
            )
    if class_name == "BatchNormalization":
        _require(not cfg.get("renorm"), where, "renorm=True")
        axis = cfg.get("axis", -1)
        if isinstance(axis, (list, tuple)):
            _require(len(axis) == 1, where, f"axis {axis!r}")
            cfg = {**cfg, "axis": axis[0]}
        _check_batch_norm_axis(cfg.get("axis", -1), obj, where)
    if class_name == "LayerNormalization":
        _require(not cfg.get("rms_scaling"), where, "rms_scaling=True (tfjs has no RMS layer normalization)")
    if class_name == "ReLU" and (cfg.get("negative_slope") or cfg.get("threshold")):
        raise ExportError(
            f"{where}: negative_slope={cfg.get('negative_slope')} / threshold={cfg.get('threshold')} are not "
            "supported by the TF.js export: tfjs' ReLU only has max_value (use LeakyReLU for a negative slope)"
        )
    if class_name in _RNN_LAYERS:
        _require(not cfg.get("stateful"), where, "stateful=True")
        _require(not cfg.get("return_state"), where, "return_state=True")
    if class_name == "Bidirectional":
        _require(cfg.get("merge_mode", "concat") in _MERGE_MODES, where, f"merge_mode {cfg.get('merge_mode')!r}")
    return cfg


def _convert_value(key: str, value: Any, where: str) -> Any:
    if key.endswith("activation"):
        return _activation(value, where)
    if key.endswith("initializer"):
        return _initializer(value)
    if key.endswith("regularizer"):
        return _regularizer(value)
    if key.endswith("constraint"):
        return _constraint(value)
    if isinstance(value, tuple):
        return list(value)
    return value


def _convert_layer_config(class_name: str, cfg: Config, obj: Any = None) -> Config:
    """Normalise one Keras 3 layer config (not a wrapper) into the Keras 2.x form tfjs-layers parses.

    ``obj`` is the Keras layer, for what the config alone does not tell (its input rank).
    """
    where = _where(cfg.get("name", "?"), class_name)
    if class_name == "InputLayer":
        return _convert_input_layer(cfg, where)
    keys, _ = SUPPORTED_LAYERS[class_name]
    _check_common(cfg, where)
    cfg = _check_class_config(class_name, cfg, where, obj)
    renamed = _RENAMED_KEYS.get(class_name, {})
    out: Config = {"name": cfg["name"], "trainable": bool(cfg.get("trainable", True)), "dtype": "float32"}
    for key in keys:
        if key in cfg:
            out[renamed.get(key, key)] = _convert_value(key, cfg[key], where)
    return out


def _check_wrapped(
    keras: Any, where: str, entry: Any, obj: Any, allowed: frozenset[str], role: str, hint: str = ""
) -> str:
    """The class name of a layer inside a wrapper, when it is a built-in layer the wrapper may hold."""
    class_name = entry.get("class_name") if isinstance(entry, dict) else None
    builtin = getattr(keras.layers, str(class_name), None)
    if class_name not in allowed or obj is None or type(obj) is not builtin:
        shown = type(obj).__name__ if obj is not None else class_name
        raise UnsupportedLayerError(
            f"{where}: {role} {shown} is not supported by the TF.js export{hint}; it can be one of "
            f"{', '.join(sorted(allowed))}"
        )
    return str(class_name)


def _inference_keys(cfg: Config) -> Config:
    """The config entries that change what a recurrent layer computes."""
    ignored = ("name", "trainable", "dropout", "recurrent_dropout", "unit_forget_bias")
    return {
        k: v
        for k, v in cfg.items()
        if k not in ignored and not k.endswith(("initializer", "regularizer", "constraint"))
    }


def _convert_bidirectional(keras: Any, cfg: Config, obj: Any, where: str) -> Config:
    """tfjs builds both directions from ``layer`` (named without Keras 3's ``forward_`` prefix)."""
    inner_cls = _check_wrapped(keras, where, cfg.get("layer"), obj.forward_layer, _RNN_LAYERS, "the wrapped layer")
    inner = _convert_layer_config(inner_cls, cfg["layer"]["config"], obj.forward_layer)
    inner["name"] = _bidirectional_inner_name(inner["name"])
    back = cfg.get("backward_layer")
    if back is not None:
        back_cls = _check_wrapped(keras, where, back, obj.backward_layer, _RNN_LAYERS, "the backward layer")
        mirrored = {**inner, "go_backwards": not inner.get("go_backwards", False)}
        backward = _convert_layer_config(back_cls, back["config"], obj.backward_layer)
        if back_cls != inner_cls or _inference_keys(backward) != _inference_keys(mirrored):
            raise ExportError(
                f"{where}: a backward_layer that is not the forward layer with go_backwards flipped is not "
                "supported (tfjs derives the backward layer from the forward one); drop backward_layer"
            )
    out = _convert_layer_config("Bidirectional", cfg)
    out["merge_mode"] = cfg.get("merge_mode", "concat")
    out["layer"] = {"class_name": inner_cls, "config": inner}
    return out


def _bidirectional_inner_name(forward_name: str) -> str:
    return forward_name[len("forward_") :] if forward_name.startswith("forward_") else forward_name


def _convert_time_distributed(keras: Any, cfg: Config, obj: Any, where: str) -> Config:
    hint = " (tfjs' TimeDistributed cannot build recurrent layers or wrappers)"
    inner_cls = _check_wrapped(
        keras, where, cfg.get("layer"), obj.layer, _TIME_DISTRIBUTABLE, "the wrapped layer", hint
    )
    inner_cfg = cfg["layer"]["config"]
    _require(not inner_cfg.get("keepdims"), where, "a wrapped global pooling layer with keepdims=True")
    out = _convert_layer_config("TimeDistributed", cfg)
    out["layer"] = {"class_name": inner_cls, "config": _convert_layer_config(inner_cls, inner_cfg, obj.layer)}
    return out


def _fresh_name(base: str, taken: set[str]) -> str:
    name, i = base, 1
    while name in taken:
        i += 1
        name = f"{base}_{i}"
    taken.add(name)
    return name


def _tfjs_layers(keras: Any, class_name: str, cfg: Config, obj: Any, taken: set[str]) -> list[tuple[str, Config]]:
    """The tfjs layers (class name, config) one Keras layer becomes, in call order; the last keeps its name."""
    where = _where(cfg.get("name", "?"), class_name)
    if class_name == "Bidirectional":
        return [(class_name, _convert_bidirectional(keras, cfg, obj, where))]
    if class_name == "TimeDistributed":
        return [(class_name, _convert_time_distributed(keras, cfg, obj, where))]
    out = _convert_layer_config(class_name, cfg, obj)
    tfjs_class = _TFJS_CLASS.get(class_name, class_name)
    if class_name == "Reshape" and -1 in out["target_shape"]:
        # tfjs leaves a -1 unresolved in the symbolic shape (the batch size is unknown), and the next
        # layer could not build: write the size Keras inferred
        out["target_shape"] = _static_output_shape(obj) or out["target_shape"]
    if class_name in _GLOBAL_POOLING and cfg.get("keepdims"):
        name = out["name"]
        out["name"] = _fresh_name(f"{name}_pool", taken)
        target = _static_output_shape(obj) or [1] * _GLOBAL_POOLING[class_name] + [-1]
        reshape = {"name": name, "trainable": out["trainable"], "dtype": "float32", "target_shape": target}
        return [(tfjs_class, out), ("Reshape", reshape)]
    return [(tfjs_class, out)]


def _check_layer_class(keras: Any, layer_name: str, entry: Config, layer_obj: Any) -> str:
    class_name = entry.get("class_name")
    if class_name in ("Functional", "Sequential", "Model") or isinstance(layer_obj, keras.Model):
        raise ExportError(
            f"{_where(layer_name, str(class_name))}: nested models are not supported by the TF.js export; "
            "rebuild the model with the inner model's layers inlined"
        )
    if class_name == "InputLayer" and layer_obj is None:
        return str(class_name)  # Keras 3 Sequential models do not list their InputLayer in model.layers
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


def _entry_name(entry: Config) -> str:
    return str(entry.get("name") or entry.get("config", {}).get("name", "?"))


def _sequential_input(cfg: Config) -> Config:
    shape = cfg.get("build_input_shape")
    if shape is None:
        raise ExportError("the Sequential model has no input shape; build it or start it with keras.Input")
    return {
        "class_name": "InputLayer",
        "config": {
            "batch_input_shape": list(shape),
            "dtype": "float32",
            "sparse": False,
            "name": f"{cfg.get('name', 'sequential')}_input",
        },
    }


def _convert_sequential(keras: Any, cfg: Config, objects: dict[str, Any], taken: set[str]) -> Config:
    layers_out = []
    for i, entry in enumerate(cfg.get("layers", [])):
        lname = _entry_name(entry)
        obj = objects.get(lname)
        cls = _check_layer_class(keras, lname, entry, obj)
        if i == 0 and cls != "InputLayer":
            layers_out.append(_sequential_input(cfg))
        for tfjs_class, layer_cfg in _tfjs_layers(keras, cls, entry["config"], obj, taken):
            layers_out.append({"class_name": tfjs_class, "config": layer_cfg})
    if not layers_out:
        raise ExportError("the Sequential model has no layers")
    return {"class_name": "Sequential", "config": {"name": cfg.get("name", "sequential"), "layers": layers_out}}


def _convert_functional(keras: Any, cfg: Config, objects: dict[str, Any], taken: set[str]) -> Config:
    layers_out = []
    for entry in cfg.get("layers", []):
        lname = _entry_name(entry)
        obj = objects.get(lname)
        cls = _check_layer_class(keras, lname, entry, obj)
        nodes = _convert_inbound_nodes(entry.get("inbound_nodes", []), _where(lname, cls))
        for tfjs_class, layer_cfg in _tfjs_layers(keras, cls, entry["config"], obj, taken):
            layers_out.append(
                {"class_name": tfjs_class, "config": layer_cfg, "name": layer_cfg["name"], "inbound_nodes": nodes}
            )
            # a stage added by the export feeds the next one, call for call
            nodes = [[[layer_cfg["name"], k, 0, {}]] for k in range(len(nodes))]
    return {
        "class_name": "Model",
        "config": {
            "name": cfg.get("name", "model"),
            "layers": layers_out,
            "input_layers": _endpoint_list(cfg.get("input_layers", []), "inputs"),
            "output_layers": _endpoint_list(cfg.get("output_layers", []), "outputs"),
        },
    }


def _convert_topology(keras: Any, model: Any) -> Config:
    try:
        model_json = json.loads(model.to_json())
    except Exception as exc:
        raise ExportError(f"could not serialize the model config: {exc}") from exc
    class_name = model_json.get("class_name")
    cfg = model_json.get("config") or {}
    objects = _layers_by_name(model)
    taken = {_entry_name(e) for e in cfg.get("layers", [])} | {layer.name for layer in model.layers}
    if class_name == "Sequential":
        return _convert_sequential(keras, cfg, objects, taken)
    if class_name in ("Functional", "Model"):
        return _convert_functional(keras, cfg, objects, taken)
    raise ExportError(
        f"model class {class_name!r} is not supported; only Sequential and functional models "
        "(subclassed models have no serializable graph)"
    )


# --------------------------------------------------------------------------- weights


def _named_weights(layer: Any, prefix: str, where: str) -> list[tuple[str, Any]]:
    """(tfjs weight name, variable) for the variables of a plain or recurrent layer (no wrapper)."""
    class_name = type(layer).__name__
    allowed = SUPPORTED_LAYERS.get(class_name, ((), ()))[1]
    renamed = _RENAMED_WEIGHTS.get(class_name, {})
    if class_name in _RNN_LAYERS:
        prefix = f"{prefix}/{layer.cell.name}"  # what the official converter writes; tfjs drops the cell
    out = []
    for var in layer.weights:
        if var.name not in allowed:
            raise ExportError(
                f"{where}: unexpected weight {var.name!r} (expected {', '.join(allowed) or 'none'})"
            )
        out.append((f"{prefix}/{renamed.get(var.name, var.name)}", var))
    return out


def _layer_weights(layer: Any) -> list[tuple[str, Any]]:
    """(tfjs weight name, variable) for every variable of a top-level layer, in Keras' order."""
    class_name = type(layer).__name__
    where = _where(layer.name, class_name)
    if class_name == "Bidirectional":
        inner = _bidirectional_inner_name(layer.forward_layer.name)
        out = _named_weights(layer.forward_layer, f"{layer.name}/forward_{inner}", where)
        out += _named_weights(layer.backward_layer, f"{layer.name}/backward_{inner}", where)
    elif class_name == "TimeDistributed":
        out = _named_weights(layer.layer, layer.name, where)
    else:
        out = _named_weights(layer, layer.name, where)
    if len(out) != len(layer.weights):
        raise ExportError(f"{where}: {len(layer.weights)} weights, {len(out)} of them in known sub-layers")
    return out


def _collect_weights(keras: Any, model: Any) -> list[tuple[str, Array]]:
    out: list[tuple[str, Array]] = []
    seen: set[str] = set()
    for layer in model.layers:
        for name, var in _layer_weights(layer):
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


def _write_shards(weights: list[tuple[str, Array]], out_dir: Path, shard_size: int) -> list[str]:
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
