"""Helpers for tests and benchmarks: derived Wine model versions and a numpy reference scorer.

There is one trained Wine model (``reference_models/wine``: Dense(13→64, relu) → Dense(64→3,
softmax)). :func:`write_wine_variant` derives a *real* different model from it (weights perturbed
and/or output units permuted) whose outputs :func:`numpy_wine_predict` computes exactly in numpy,
so a test can tell which version produced a prediction. :func:`write_broken_variant` writes the
usual ways an artifact goes bad (corrupt JSON, a shard of the wrong size, NaN weights).
"""

from __future__ import annotations

import json
import os
import shutil
from importlib import resources as importlib_resources
from pathlib import Path
from typing import Any

import numpy as np

from ._types import Array
from .errors import InputError
from .reference import forward
from .topology import WEIGHT_DTYPES, read_artifact_graph, read_layers_artifact, split_weights

__all__ = [
    "BROKEN_KINDS",
    "WINE_DIR",
    "numpy_layers_predict",
    "numpy_wine_predict",
    "read_layers_weights",
    "wine_stream",
    "write_broken_variant",
    "write_layers_weights",
    "write_wine_variant",
]

#: The shipped Wine reference artifact (model.json, shard, golden.npz, preprocess.json, stream.npz).
WINE_DIR = Path(str(importlib_resources.files("jsengine_ml").joinpath("reference_models").joinpath("wine")))



def _model_json(model_dir: str | os.PathLike[str]) -> Path:
    path = Path(model_dir)
    return path / "model.json" if path.is_dir() else path


def read_layers_weights(model_dir: str | os.PathLike[str]) -> dict[str, Array]:
    """Weights of a TF.js Layers artifact by name, in ``weightsManifest`` order (little-endian)."""
    spec, shards = read_layers_artifact(_model_json(model_dir))
    return split_weights(spec, shards)


def write_layers_weights(model_dir: str | os.PathLike[str], weights: dict[str, Array]) -> None:
    """Rewrite the shards of an artifact (in place) from ``weights`` (same names, shapes and order)."""
    model_json = _model_json(model_dir)
    spec = json.loads(model_json.read_text(encoding="utf-8"))
    for group in spec["weightsManifest"]:
        blob = b"".join(
            np.ascontiguousarray(weights[w["name"]], dtype=np.dtype(WEIGHT_DTYPES[w.get("dtype", "float32")])).tobytes()
            for w in group["weights"]
        )
        paths = group["paths"]
        # Keep the original split: fill each shard up to its current size, the last takes the rest.
        offset = 0
        for i, rel in enumerate(paths):
            shard = model_json.parent / rel
            size = len(blob) - offset if i == len(paths) - 1 else shard.stat().st_size
            shard.write_bytes(blob[offset : offset + size])
            offset += size


def _dense_layers(spec: dict[str, Any]) -> list[dict[str, Any]]:
    topology = spec["modelTopology"]
    config = topology.get("model_config", topology).get("config", {})
    layers = config["layers"] if isinstance(config, dict) else config
    return [layer["config"] for layer in layers if layer.get("class_name") == "Dense"]


def numpy_layers_predict(model_dir: str | os.PathLike[str], X: Any) -> Array:
    """Outputs of a TF.js Layers artifact computed by the numpy reference (float64 math), as float32."""
    graph = read_artifact_graph(_model_json(model_dir))
    return forward(graph, np.asarray(X), np.float64)[0].reshape(len(X), -1).astype(np.float32)


def numpy_wine_predict(model_dir: str | os.PathLike[str] = WINE_DIR, X: Any = None) -> Array:
    """Reference outputs of a Wine model (the shipped one or a variant) for standardized rows ``X``."""
    if X is None:
        raise InputError("numpy_wine_predict() needs the rows X")
    return numpy_layers_predict(model_dir, X)


def _copy_artifact(src: Path, out_dir: Path) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    spec = json.loads((src / "model.json").read_text(encoding="utf-8"))
    shutil.copyfile(src / "model.json", out_dir / "model.json")
    for group in spec["weightsManifest"]:
        for rel in group["paths"]:
            shutil.copyfile(src / rel, out_dir / rel)
    return out_dir


def write_wine_variant(
    out_dir: str | os.PathLike[str],
    seed: int = 1,
    *,
    noise: float = 0.1,
    permute: bool = False,
    base: str | os.PathLike[str] = WINE_DIR,
) -> Path:
    """Write a derived Wine model to ``out_dir`` (model.json + shard) and return the folder.

    Every weight gets Gaussian noise of ``noise`` × its tensor's standard deviation (seeded), so the
    outputs differ from the base model by far more than float32 round-off while the model stays
    sensible; ``permute=True`` also permutes the output units (classes), a model whose predicted
    classes are mostly wrong. Score it in numpy with :func:`numpy_wine_predict`.
    """
    out = _copy_artifact(Path(base), Path(out_dir))
    rng = np.random.default_rng(seed)
    weights = read_layers_weights(out)
    changed = {}
    for name, w in weights.items():
        scale = float(w.std()) or 1.0
        changed[name] = np.add(w, rng.normal(0.0, noise * scale, size=w.shape)).astype(w.dtype) if noise else w
    if permute:
        last_kernel = [n for n in changed if n.endswith("/kernel")][-1]
        last_bias = last_kernel[: -len("kernel")] + "bias"
        k = changed[last_kernel].shape[1]
        perm = np.roll(np.arange(k), 1) if k > 1 else np.arange(k)
        changed[last_kernel] = changed[last_kernel][:, perm]
        if last_bias in changed:
            changed[last_bias] = changed[last_bias][perm]
    write_layers_weights(out, changed)
    return out


BROKEN_KINDS = ("corrupt-json", "shard-size", "nan-weights", "missing-shard", "wrong-width")


def write_broken_variant(
    out_dir: str | os.PathLike[str], kind: str, *, base: str | os.PathLike[str] = WINE_DIR
) -> Path:
    """Write a Wine artifact broken in one way (``kind`` in :data:`BROKEN_KINDS`); return its folder.

    ``corrupt-json``: model.json truncated; ``shard-size``: shard 8 bytes short; ``nan-weights``:
    loads fine but every output is NaN; ``missing-shard``: shard deleted; ``wrong-width``: output layer
    cut to 2 units (loads and runs, but the output width differs from the serving version's).
    """
    out = _copy_artifact(Path(base), Path(out_dir))
    model_json = out / "model.json"
    spec = json.loads(model_json.read_text(encoding="utf-8"))
    shard = out / spec["weightsManifest"][0]["paths"][0]
    if kind == "corrupt-json":
        text = model_json.read_text(encoding="utf-8")
        model_json.write_text(text[: len(text) // 2], encoding="utf-8")
    elif kind == "shard-size":
        shard.write_bytes(shard.read_bytes()[:-8])
    elif kind == "missing-shard":
        shard.unlink()
    elif kind == "nan-weights":
        weights = read_layers_weights(out)
        first = next(iter(weights))
        weights[first] = np.full_like(weights[first], np.nan)
        write_layers_weights(out, weights)
    elif kind == "wrong-width":
        weights = read_layers_weights(out)
        last_kernel = [n for n in weights if n.endswith("/kernel")][-1]
        last_bias = last_kernel[: -len("kernel")] + "bias"
        weights[last_kernel] = weights[last_kernel][:, :2]
        weights[last_bias] = weights[last_bias][:2]
        for w in spec["weightsManifest"][0]["weights"]:
            if w["name"] in (last_kernel, last_bias):
                w["shape"] = list(weights[w["name"]].shape)
        layer_name = last_kernel[: -len("/kernel")]
        for layer in _dense_layers(spec):
            if layer["name"] == layer_name:
                layer["units"] = 2
        model_json.write_text(json.dumps(spec), encoding="utf-8")
        write_layers_weights(out, weights)
    else:
        raise InputError(f"unknown broken kind {kind!r}; pick one of {BROKEN_KINDS}")
    return out


def wine_stream(model_dir: str | os.PathLike[str] = WINE_DIR) -> tuple[Array, Array, Array]:
    """The Wine test stream: (raw rows, labels, standardized float32 rows) using preprocess.json."""
    model_dir = Path(model_dir)
    stream = np.load(model_dir / "stream.npz")
    pre = json.loads((model_dir / "preprocess.json").read_text(encoding="utf-8"))
    x_raw = stream["x_raw"]
    x = ((x_raw - np.asarray(pre["mean"])) / np.asarray(pre["scale"])).astype(np.float32)
    return x_raw, stream["y"], x
