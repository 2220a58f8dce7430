"""The demo: score the Wine model on a stream of rows, like a streaming job would.

First on the default engine, printing running accuracy every 10 records; then the same stream on
every installed engine, with rows/s (one record per call, and the whole stream as one batch).
"""

from __future__ import annotations

import json
import time
from importlib import resources as importlib_resources
from pathlib import Path

import numpy as np

from ._types import Array
from .backends import available_backends, get_backend
from .model import load


def wine_dir() -> Path:
    return Path(str(importlib_resources.files("jsengine_ml").joinpath("reference_models").joinpath("wine")))


def wine_stream() -> tuple[Array, Array]:
    """The held-out Wine rows, standardized with the training scaler, and their labels."""
    folder = wine_dir()
    scaler = json.loads((folder / "preprocess.json").read_text(encoding="utf-8"))
    stream = np.load(folder / "stream.npz")
    x = (stream["x_raw"] - np.asarray(scaler["mean"], np.float32)) / np.asarray(scaler["scale"], np.float32)
    return x.astype(np.float32), stream["y"].astype(np.int64)


def run_demo(backend: str | None = None, *, every: int = 10) -> int:
    x, y = wine_stream()
    chosen = get_backend(backend).name
    model = load(wine_dir(), backend=chosen, version="wine-v1")
    md = model.metadata
    print(f"Wine MLP ({md.n_features} -> {md.n_outputs}) on {md.engine} {md.engine_version} [{md.backend}], "
          f"{len(x)} streamed records")
    correct = 0
    with model:
        for i, (row, label) in enumerate(zip(x, y, strict=True), start=1):
            proba = model.predict(row.reshape(1, -1))[0]
            correct += int(np.argmax(proba) == label)
            if i % every == 0 or i == len(x):
                print(f"  record {i:3d}: predicted {int(np.argmax(proba))} (p={proba.max():.3f}), "
                      f"true {int(label)}, running accuracy {correct / i:.3f}")
    print("\nSame stream on every installed engine:")
    infos = available_backends()
    names = {i.name: f"{i.capabilities.engine} {i.capabilities.engine_version}" for i in infos if i.capabilities}
    width = max([len(n) for n in names.values()] + [6])
    bwidth = max([len(i.name) for i in infos] + [7])
    header = (f"{'backend':<{bwidth}} {'engine':<{width}} {'load s':>7} {'rows/s (1 per call)':>20} "
              f"{'rows/s (one batch)':>19}")
    print(f"  {header} {'accuracy':>9}")
    for info in infos:
        if not info.available:
            print(f"  {info.name:<{bwidth}} unavailable: {info.reason}")
            continue
        t0 = time.perf_counter()
        with load(wine_dir(), backend=info.name) as m:
            load_s = time.perf_counter() - t0
            t0 = time.perf_counter()
            single = np.concatenate([m.predict(row.reshape(1, -1)) for row in x])
            per_row = len(x) / (time.perf_counter() - t0)
            t0 = time.perf_counter()
            batch = m.predict(x)
            per_batch = len(x) / (time.perf_counter() - t0)
        assert np.allclose(single, batch, atol=1e-6)
        accuracy = float(np.mean(np.argmax(batch, axis=1) == y))
        print(f"  {info.name:<{bwidth}} {names[info.name]:<{width}} {load_s:>7.2f} {per_row:>20,.0f} "
              f"{per_batch:>19,.0f} {accuracy:>9.3f}")
    return 0
