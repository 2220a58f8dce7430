"""Per-record cost of jsengine-ml inside a PyFlink job vs the same job scoring with a numpy map.

    python benchmarks/flink_overhead.py [--backend v8] [--small 4000] [--large 24000] [--batch 64]

Each job reads N Wine rows (strings) from a collection, scores them and collects one string per
row. The per-record cost is (t(large) - t(small)) / (large - small), which cancels the fixed cost
of starting the job. Jobs: ``numpy``: a plain ``map`` computing the MLP with numpy per row;
``jsengine``: ``key_by(id % 64)`` + ``ScoringFunction`` (micro-batches of --batch rows).
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
from pyflink.common import Types
from pyflink.datastream import MapFunction, StreamExecutionEnvironment

from jsengine_ml.flink import ModelSpec, ScoringFunction, configure_env
from jsengine_ml.testing import WINE_DIR, read_layers_weights


class NumpyWine(MapFunction):
    def open(self, runtime_context):
        w = read_layers_weights(WINE_DIR)
        self.w1, self.b1, self.w2, self.b2 = (w["hidden/kernel"], w["hidden/bias"], w["probs/kernel"], w["probs/bias"])
        pre = json.loads((WINE_DIR / "preprocess.json").read_text())
        self.mean, self.scale = np.asarray(pre["mean"]), np.asarray(pre["scale"])

    def map(self, value):
        key, _, rest = value.partition(",")
        x = ((np.fromstring(rest, sep=",") - self.mean) / self.scale).astype(np.float32)
        h = np.maximum(x @ self.w1 + self.b1, 0) @ self.w2 + self.b2
        return f"{key},numpy,{int(np.argmax(h))}"


def run(kind: str, n: int, backend: str, batch: int, parallelism: int) -> float:
    x_raw = np.load(WINE_DIR / "stream.npz")["x_raw"]
    rows = np.tile(x_raw, (n // len(x_raw) + 1, 1))[:n]
    lines = [f"{i}," + ",".join(map(repr, r)) for i, r in enumerate(rows.tolist())]
    env = configure_env(StreamExecutionEnvironment.get_execution_environment(), parallelism=parallelism)
    ds = env.from_collection(lines, type_info=Types.STRING())
    if kind == "numpy":
        out = ds.map(NumpyWine(), Types.STRING())
    else:
        spec = ModelSpec(str(WINE_DIR), backend=backend, version="v1", preprocess=str(WINE_DIR / "preprocess.json"))
        out = ds.key_by(lambda s: int(s.split(",", 1)[0]) % 64, key_type=Types.INT()) \
            .process(ScoringFunction(spec, batch_size=batch), Types.STRING())
    t0 = time.perf_counter()
    got = sum(1 for _ in out.execute_and_collect())
    elapsed = time.perf_counter() - t0
    assert got == n, (kind, got, n)
    return elapsed


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--backend", default="v8")
    ap.add_argument("--small", type=int, default=4000)
    ap.add_argument("--large", type=int, default=24000)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--parallelism", type=int, default=1)
    args = ap.parse_args()
    per = {}
    run("numpy", 500, args.backend, args.batch, args.parallelism)  # JVM / harness warm-up
    for kind in ("numpy", "jsengine"):
        t_small = run(kind, args.small, args.backend, args.batch, args.parallelism)
        t_large = run(kind, args.large, args.backend, args.batch, args.parallelism)
        per[kind] = (t_large - t_small) / (args.large - args.small)
        print(f"{kind:9s} {args.small} rows {t_small:6.2f} s, {args.large} rows {t_large:6.2f} s "
              f"-> {per[kind] * 1e6:7.1f} µs/record")
    print(f"ratio jsengine({args.backend}, batch {args.batch}) / numpy map: {per['jsengine'] / per['numpy']:.2f}x")


if __name__ == "__main__":
    main()
