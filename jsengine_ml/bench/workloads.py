"""The workloads: the shipped reference models, their input rows, and the numpy contender.

The numpy contender is :func:`jsengine_ml.reference.forward` over the model's layer graph (read by
:mod:`jsengine_ml.topology`), nothing else. It is also the yardstick every other contender is
checked against, and it is itself checked against the Keras golden outputs (``golden.npz``).
"""

from __future__ import annotations

import functools
import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from importlib import resources as importlib_resources
from pathlib import Path
from typing import Any

import numpy as np

from .._types import Array, Float32Array
from ..reference import forward
from ..topology import Graph, read_artifact_graph

REF_DIR = Path(str(importlib_resources.files("jsengine_ml").joinpath("reference_models")))
Rows = Callable[[np.random.Generator, "Workload", int], Array]


def _normal(rng: np.random.Generator, w: Workload, n: int) -> Array:
    """Standardized features (the models were trained on z-scored columns)."""
    return rng.standard_normal((n, w.n_features)).astype(np.float32)


def _pixels(rng: np.random.Generator, w: Workload, n: int) -> Array:
    """Pixel intensities in [0, 1] (the digits were scaled by 1/16)."""
    return rng.uniform(0.0, 1.0, size=(n, w.n_features)).astype(np.float32)


def _tokens(rng: np.random.Generator, w: Workload, n: int) -> Array:
    """Token ids in [1, vocabulary) (0 is padding)."""
    vocab = next(int(c.config["input_dim"]) for c in w.graph.calls if c.class_name == "Embedding")
    return rng.integers(1, vocab, size=(n, w.n_features), dtype=np.int32)


@dataclass(frozen=True)
class Workload:
    """A reference model and the rows it is scored on."""

    name: str
    title: str
    make_rows: Rows
    #: Whether the onnxruntime contender covers it (the ONNX builder does Dense / Conv2D / pooling).
    onnx: bool = False

    @property
    def model_dir(self) -> Path:
        return REF_DIR / self.name

    @property
    def graph(self) -> Graph:
        return _graph(self.model_dir)

    @property
    def input_shape(self) -> tuple[int, ...]:
        """One row's shape (without the batch axis)."""
        return tuple(int(d or 0) for d in self.graph.inputs[0].shape)

    @property
    def n_features(self) -> int:
        return math.prod(self.input_shape)

    @property
    def input_dtype(self) -> str:
        return self.graph.inputs[0].dtype

    def rows(self, rng: np.random.Generator, n: int) -> Array:
        """``n`` rows as ``predict`` takes them: an (n, features) float32 (or int32) matrix."""
        return self.make_rows(rng, self, n)

    def golden(self) -> tuple[Array, Array]:
        """The Keras inputs and outputs saved with the model, as (n, features) and (n, outputs)."""
        with np.load(self.model_dir / "golden.npz") as g:
            x, y = g["x"], g["y"]
        return x.reshape(len(x), -1), y.reshape(len(y), -1).astype(np.float32)


@functools.cache
def _graph(model_dir: Path) -> Graph:
    return read_artifact_graph(model_dir / "model.json")


WORKLOADS: dict[str, Workload] = {
    w.name: w
    for w in (
        Workload("wine", "Wine MLP (13→64 relu→3 softmax)", _normal, onnx=True),
        Workload("digits_cnn", "digits CNN (8×8×1 conv/pool/conv/dense)", _pixels, onnx=True),
        Workload("sequence_lstm", "LSTM(12) over 10 steps × 2 features", _normal),
        Workload("sequence_gru", "GRU(12) over 10 steps × 2 features", _normal),
        Workload("embedding", "Embedding(40, 8) → average → Dense (11 token ids)", _tokens),
        Workload("branches", "functional: two Dense branches, BatchNorm, Add + Concatenate", _normal),
    )
}


_BLAS_PREFIXES = ("scipy_openblas_", "openblas_")
_BLAS_SUFFIXES = ("64_", "")


def single_thread_blas() -> tuple[str, Callable[[], None]]:
    """Limit numpy's OpenBLAS to one thread (as onnxruntime and the engines run on one): (what was done,
    a function restoring the previous setting).

    Threaded BLAS also spin-waits on the other cores after each call, which slows down whichever
    contender runs next on a small machine. Uses OpenBLAS's own ``set_num_threads`` through ctypes
    (what threadpoolctl does); other BLAS builds are left alone.
    """
    import ctypes

    try:
        with open("/proc/self/maps") as f:
            paths = sorted({line.split()[-1] for line in f if "openblas" in line.lower() and "/" in line})
    except OSError:
        paths = []
    for path in paths:
        lib = ctypes.CDLL(path)
        for prefix in _BLAS_PREFIXES:
            for suffix in _BLAS_SUFFIXES:
                setter = getattr(lib, f"{prefix}set_num_threads{suffix}", None)
                getter = getattr(lib, f"{prefix}get_num_threads{suffix}", None)
                if setter is not None and getter is not None:
                    before = int(getter())
                    setter(1)
                    return f"OpenBLAS threads {before} → {getter()} (set by the benchmark)", partial(setter, before)
    return "BLAS threads unchanged (no OpenBLAS found)", lambda: None


class NumpyReference:
    """The numpy contender: :func:`jsengine_ml.reference.forward` over the model's graph, float32."""

    def __init__(self, model_dir: str | os.PathLike[str]):
        path = Path(model_dir)
        self.graph = read_artifact_graph(path if path.suffix == ".json" else path / "model.json")
        spec = self.graph.inputs[0]
        self.input_shape = tuple(int(d or 0) for d in spec.shape)
        self.input_dtype = np.int32 if spec.dtype == "int32" else np.float32

    @classmethod
    def from_dir(cls, model_dir: str | os.PathLike[str]) -> NumpyReference:
        return cls(model_dir)

    def predict(self, rows: Any) -> Float32Array:
        x = np.asarray(rows, dtype=self.input_dtype)
        n = x.shape[0]
        (out,) = forward(self.graph, x.reshape((n, *self.input_shape)), dtype=np.float32)
        return np.asarray(out, dtype=np.float32).reshape(n, -1)

    def close(self) -> None:
        pass


def reference_vs_golden(workload: Workload) -> float:
    """Max |numpy reference − Keras golden| on the golden rows."""
    x, y = workload.golden()
    return float(np.abs(np.subtract(NumpyReference(workload.model_dir).predict(x), y)).max())
