"""The ``kernels`` runtime: Dense-only TF.js Layers models as plain-JS typed-array loops.

tfjs costs ~0.3-1 ms per call whatever the batch size; for small MLPs that is most of the time.
Models made only of InputLayer, Dense, Activation, Dropout, BatchNormalization, Flatten and
Reshape layers (a chain) compile to a list of ops that ``shims/kernels.js`` runs directly, with no
tfjs in the engine. Anything else raises :class:`ModelError` naming the layer.
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np

from .errors import ModelError

SUPPORTED = ("InputLayer", "Dense", "Activation", "Dropout", "BatchNormalization", "Flatten", "Reshape")
ACTIVATIONS = ("linear", "relu", "relu6", "sigmoid", "tanh", "elu", "selu", "softplus", "softsign", "swish", "softmax")


def _layers(topology: dict[str, Any]) -> tuple[str, list[dict[str, Any]]]:
    model = topology.get("model_config", topology)
    config = model.get("config", {})
    layers = config.get("layers", []) if isinstance(config, dict) else config
    return model.get("class_name", "?"), layers


def compile_ops(spec: dict[str, Any], shards: dict[str, bytes], source: str) -> tuple[list[dict[str, Any]],
                                                                                      dict[str, np.ndarray],
                                                                                      list[int | None], int]:
    """Turn a model.json + shards into (ops, weights by name, input shape, output width)."""
    kind, layers = _layers(spec["modelTopology"])
    from .model import split_weights  # model.py imports this module

    weights = {name: array.astype(np.float32) for name, array in split_weights(spec, shards).items()}
    ops: list[dict[str, Any]] = []
    input_shape: list[int | None] | None = None
    width: int | None = None
    previous: str | None = None
    for layer in layers:
        cls, cfg = layer.get("class_name"), layer.get("config", {})
        name = cfg.get("name", "?")
        if cls not in SUPPORTED:
            raise ModelError(
                f"{source}: layer {name!r} ({cls}) is not supported by the kernels runtime "
                f"(supported: {', '.join(SUPPORTED)}); load it with runtime='tfjs'"
            )
        if kind != "Sequential":
            inbound = layer.get("inbound_nodes") or []
            sources = [node[0] for group in inbound for node in group] if inbound else []
            if cls != "InputLayer" and sources != [previous]:
                raise ModelError(f"{source}: the kernels runtime runs a single chain of layers; {name!r} "
                                 f"takes {sources}. Load it with runtime='tfjs'")
        previous = name
        if input_shape is None:
            shape = cfg.get("batch_input_shape")
            if shape:
                input_shape = list(shape)
                width = math.prod(d for d in shape[1:])
            if cls == "InputLayer":
                continue
        if width is None:
            raise ModelError(f"{source}: cannot find the input shape (no batch_input_shape)")
        if cls == "Dense":
            activation = _activation(cfg, source, name)
            kernel = _weight(weights, name, "kernel", source)
            if kernel.shape != (width, cfg["units"]):
                raise ModelError(f"{source}: Dense {name!r} kernel has shape {kernel.shape}, expected "
                                 f"({width}, {cfg['units']}) (only the last axis of a Dense input is supported)")
            bias = f"{name}/bias" if cfg.get("use_bias", True) else None
            if bias:
                _weight(weights, name, "bias", source)
            ops.append({"op": "dense", "kernel": f"{name}/kernel", "bias": bias, "nin": width,
                        "nout": cfg["units"], "activation": activation})
            width = cfg["units"]
        elif cls == "Activation":
            ops.append({"op": "activation", "activation": _activation(cfg, source, name)})
        elif cls == "BatchNormalization":
            axis = cfg.get("axis", -1)
            if axis not in (-1, len(input_shape or []) - 1, [-1]):
                raise ModelError(f"{source}: BatchNormalization {name!r} on axis {axis} is not supported here")
            op = {"op": "batchnorm", "epsilon": cfg.get("epsilon", 1e-3),
                  "mean": f"{name}/moving_mean", "variance": f"{name}/moving_variance",
                  "gamma": f"{name}/gamma" if cfg.get("scale", True) else None,
                  "beta": f"{name}/beta" if cfg.get("center", True) else None}
            for key in ("mean", "variance", "gamma", "beta"):
                if op[key]:
                    _weight(weights, name, op[key].split("/", 1)[1], source)
            ops.append(op)
        # Dropout is the identity at inference; Flatten/Reshape do not change a flat row.
    if width is None or input_shape is None:
        raise ModelError(f"{source}: the model has no layers")
    used = {op[k] for op in ops for k in ("kernel", "bias", "mean", "variance", "gamma", "beta") if op.get(k)}
    return ops, {k: v for k, v in weights.items() if k in used}, input_shape, width


def _activation(cfg: dict[str, Any], source: str, name: str) -> str:
    activation = cfg.get("activation", "linear")
    if isinstance(activation, dict):
        activation = activation.get("class_name", "?")
    if activation not in ACTIVATIONS:
        raise ModelError(f"{source}: activation {activation!r} of layer {name!r} is not supported by the kernels "
                         f"runtime; load it with runtime='tfjs'")
    return activation


def _weight(weights: dict[str, np.ndarray], layer: str, kind: str, source: str) -> np.ndarray:
    key = f"{layer}/{kind}"
    if key not in weights:
        raise ModelError(f"{source}: weight {key} is missing from the weights manifest")
    return weights[key]


def define(engine: Any, model_id: int, ops: list[dict[str, Any]], weights: dict[str, np.ndarray]) -> None:
    """Move the weights into the engine and register the op list under ``model_id``.

    On interpreters (``capabilities().jit`` false) small Dense layers are compiled to unrolled JS
    with the weights as literals: 3-10x faster there than typed-array loops. A JIT (V8) runs the
    loops faster than such large straight-line functions, so it keeps the loops.
    """
    globals_ = {}
    for i, (name, array) in enumerate(weights.items()):
        slot = f"__jsml_kw{model_id}_{i}"
        engine.put_array(slot, np.ascontiguousarray(array, dtype=np.float32).reshape(-1))
        globals_[name] = slot
    unroll = not engine.capabilities().jit
    engine.call("__jsml.kernels.define", model_id, json.dumps(ops), globals_, unroll)
