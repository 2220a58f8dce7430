"""What isolation (``isolation="process"``) adds to a prediction, per engine, at batch 1 and 10,000.

The same model (the Wine reference, compiled runtime: WebAssembly on V8, ES5 kernels elsewhere) is
scored in-process and in a supervised worker; each figure is the median over ``--repeats`` blocks of
back-to-back calls, blocks alternating between the two so that machine noise hits both alike.
Targets (the isolation issue): at most 50 µs added per call at batch 1, at most 5 % at batch 10,000.

    python benchmarks/isolation_overhead.py [--backends v8 quickjs duktape] [--repeats 15] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from typing import Any

import numpy as np

import jsengine_ml
from jsengine_ml.testing import WINE_DIR

TARGET_ADDED_US_BATCH1 = 50.0
TARGET_RATIO_BATCH10K = 1.05


def _block(model: Any, rows: np.ndarray, calls: int) -> float:
    """Seconds per call over ``calls`` back-to-back predictions."""
    started = time.perf_counter()
    for _ in range(calls):
        model.predict(rows)
    return (time.perf_counter() - started) / calls


def measure(backend: str, batch: int, repeats: int, budget_s: float = 0.2) -> dict[str, Any]:
    rows = np.random.default_rng(0).standard_normal((batch, 13)).astype(np.float32)
    models = {mode: jsengine_ml.load(WINE_DIR, backend, isolation=mode) for mode in ("none", "process")}
    try:
        for model in models.values():  # warm up (V8 tiers up its kernels) and size the blocks
            _block(model, rows, 20)
        per_call = _block(models["none"], rows, 20)
        calls = max(3, int(budget_s / max(per_call, 1e-6)))
        times: dict[str, list[float]] = {"none": [], "process": []}
        for _ in range(repeats):
            for mode, model in models.items():
                times[mode].append(_block(model, rows, calls))
        np.testing.assert_allclose(models["none"].predict(rows), models["process"].predict(rows), rtol=0, atol=0)
    finally:
        for model in models.values():
            model.close()
    inproc, isolated = statistics.median(times["none"]), statistics.median(times["process"])
    return {
        "backend": backend, "batch": batch, "calls_per_block": calls, "repeats": repeats,
        "in_process_us": inproc * 1e6, "isolated_us": isolated * 1e6,
        "added_us": (isolated - inproc) * 1e6, "ratio": isolated / inproc,
    }


def verdict(row: dict[str, Any]) -> str:
    if row["batch"] == 1:
        return "met" if row["added_us"] <= TARGET_ADDED_US_BATCH1 else "MISSED"
    return "met" if row["ratio"] <= TARGET_RATIO_BATCH10K else "MISSED"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    available = [b.name for b in jsengine_ml.available_backends() if b.available]
    parser.add_argument("--backends", nargs="*", default=available)
    parser.add_argument("--batches", nargs="*", type=int, default=[1, 10_000])
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--json", help="also write the rows to this file")
    args = parser.parse_args(argv)
    rows = [measure(b, n, args.repeats) for b in args.backends for n in args.batches]
    print("| engine | batch | in-process µs/call | isolated µs/call | added µs | ratio | target |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        target = f"≤ {TARGET_ADDED_US_BATCH1:g} µs" if r["batch"] == 1 else f"≤ {TARGET_RATIO_BATCH10K:g}x"
        print(f"| {r['backend']} | {r['batch']:,} | {r['in_process_us']:.1f} | {r['isolated_us']:.1f} | "
              f"{r['added_us']:+.1f} | {r['ratio']:.3f} | {target}: {verdict(r)} |")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(rows, f, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
