"""Soak: many single-row predictions and many hot swaps; wrong answers, memory growth, leaks.

* predictions: ``--n`` single-row predictions of the Wine model per engine, runtime (compiled
  kernels, tfjs) and mode (in-process, isolated), each checked against the numpy reference; the
  resident memory (this process plus the worker) after a warm-up of ``--warmup`` predictions is
  compared with the end. Target: 0 wrong, growth < 5 %.
* hot swaps: ``--swaps`` versions offered one after the other to a HotSwapModel (alternating two
  real Wine variants), each scored once after it goes live. Target: memory bounded (< +10 % after
  the first 10 %), and afterwards no engine, thread or process left behind.

Exit status 1 on a wrong prediction or a leak; with ``--check-memory`` also on the growth targets.
``--small`` runs a few thousand predictions and 30 swaps (a test runs it).

    python benchmarks/soak.py [--small] [--n 1000000] [--swaps 1000] [--backends v8 ...] [--json out.json]
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import shutil
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

import jsengine_ml
from jsengine_ml.engine import _LIVE_ENGINES
from jsengine_ml.hotswap import HotSwapModel
from jsengine_ml.isolation.supervisor import SPAWNER
from jsengine_ml.testing import WINE_DIR, numpy_wine_predict, wine_stream, write_wine_variant

_PAGE = os.sysconf("SC_PAGE_SIZE")
MiB = 1 << 20


def rss(pid: int | None = None) -> int:
    with open(f"/proc/{pid or 'self'}/statm", "rb") as f:
        return int(f.read().split()[1]) * _PAGE


def total_rss(model: Any) -> int:
    """This process plus the model's worker, if it has one."""
    pid = getattr(model.engine, "pid", None)
    return rss() + (rss(pid) if pid else 0)


def children() -> list[int]:
    out = []
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                if int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1]) == os.getpid():
                    out.append(int(pid))
            except (OSError, IndexError):
                pass
    return out


def soak_predictions(backend: str, runtime: str, isolation: str, n: int, warmup: int) -> dict[str, Any]:
    pool = wine_stream()[2]  # the standardized Wine test rows
    expected = numpy_wine_predict(WINE_DIR, pool)
    wrong = 0
    curve: list[float] = []  # RSS (MiB) at every tenth of the run: a leak keeps climbing, a warm-up levels off
    checkpoints = {n * k // 10 for k in range(1, 10)}
    with jsengine_ml.load(WINE_DIR, backend, runtime=runtime, isolation=isolation) as model:
        started = time.perf_counter()
        after_warmup = 0
        half = 0
        for i in range(n):
            if i == warmup:
                gc.collect()
                after_warmup = total_rss(model)
                started = time.perf_counter()
            if i in checkpoints:
                curve.append(total_rss(model) / MiB)
            if i == max(warmup, n // 2):
                half = total_rss(model)
            k = i % len(pool)
            out = model.predict(pool[k : k + 1])
            if not np.allclose(out[0], expected[k], atol=1e-5):
                wrong += 1
        gc.collect()
        end = total_rss(model)
        seconds = time.perf_counter() - started
    measured = max(1, n - warmup)
    return {"kind": "predictions", "backend": backend, "runtime": runtime, "isolation": isolation, "n": n,
            "warmup": warmup, "wrong": wrong, "rss_after_warmup_mib": after_warmup / MiB, "rss_end_mib": end / MiB,
            "growth": end / after_warmup - 1 if after_warmup else 0.0,
            "late_growth": end / half - 1 if half else 0.0, "rss_curve_mib": curve,
            "us_per_prediction": seconds / measured * 1e6}


def soak_swaps(backend: str, isolation: str, swaps: int, workdir: Path) -> dict[str, Any]:
    versions = [Path(shutil.copytree(WINE_DIR, workdir / "a")), write_wine_variant(workdir / "b", seed=2)]
    refs = [numpy_wine_predict(v, np.zeros((1, 13), np.float32)) for v in versions]
    engines_before, threads_before = len(_LIVE_ENGINES), threading.active_count()
    first = swaps // 10
    rss_first = 0
    wrong = 0
    started = time.perf_counter()
    model = HotSwapModel(backend=backend, isolation=isolation, keep_previous=False)
    try:
        for i in range(swaps):
            model.offer(f"v{i}", versions[i % 2]).result(120)
            out, version = model.predict_with_version(np.zeros((1, 13), np.float32))
            if version != f"v{i}" or not np.allclose(out, refs[i % 2], atol=1e-5):
                wrong += 1
            if i + 1 == first:
                gc.collect()
                rss_first = rss() + sum(rss(p) for p in children())
        gc.collect()
        rss_end = rss() + sum(rss(p) for p in children())
    finally:
        model.close()
    seconds = time.perf_counter() - started
    time.sleep(0.2)
    SPAWNER.close()  # reused workers and spares are not leaks: stop them before counting
    gc.collect()
    leaked = {"engines": len(_LIVE_ENGINES) - engines_before, "threads": threading.active_count() - threads_before,
              "processes": len(children())}
    return {"kind": "swaps", "backend": backend, "isolation": isolation, "swaps": swaps, "wrong": wrong,
            "rss_after_first_mib": rss_first / MiB, "rss_end_mib": rss_end / MiB,
            "growth": rss_end / rss_first - 1 if rss_first else 0.0, "leaked": leaked,
            "ms_per_swap": seconds / max(1, swaps) * 1e3}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    available = [b.name for b in jsengine_ml.available_backends() if b.available]
    parser.add_argument("--backends", nargs="*", default=available)
    parser.add_argument("--runtimes", nargs="*", default=["compiled", "tfjs"])
    parser.add_argument("--isolation", nargs="*", default=["none", "process"])
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--warmup", type=int, default=None, help="default: 10 %% of --n")
    parser.add_argument("--swaps", type=int, default=1000)
    parser.add_argument("--small", action="store_true", help="2,000 predictions (compiled), 30 swaps")
    parser.add_argument("--check-memory", action="store_true", help="fail on the growth targets too")
    parser.add_argument("--json")
    args = parser.parse_args(argv)
    if args.small:
        args.n, args.swaps, args.runtimes = 2000, 30, ["compiled"]
    warmup = args.warmup if args.warmup is not None else args.n // 10
    rows: list[dict[str, Any]] = []
    failed = False
    for backend in args.backends:
        for isolation in args.isolation:
            for runtime in args.runtimes:
                row = soak_predictions(backend, runtime, isolation, args.n, warmup)
                rows.append(row)
                bad = row["wrong"] > 0 or (args.check_memory and row["growth"] >= 0.05)
                failed |= bad
                print(f"predictions {backend:8} {runtime:8} {isolation:8} n={row['n']:,} wrong={row['wrong']} "
                      f"RSS {row['rss_after_warmup_mib']:.0f} -> {row['rss_end_mib']:.0f} MiB "
                      f"({row['growth']:+.1%}; second half {row['late_growth']:+.1%}) "
                      f"{row['us_per_prediction']:.0f} µs/prediction{'  FAIL' if bad else ''}",
                      flush=True)
            if not args.swaps:
                continue
            if isolation == "none" and jsengine_ml.get_backend(backend).capabilities().main_thread_only:
                # a hot-swap loader is a thread of its own: such a backend's versions load isolated
                print(f"swaps       {backend:8} {'':8} {isolation:8} not run: capability main_thread_only "
                      f"(the loader thread's engines run isolated; see the process row)", flush=True)
                continue
            with tempfile.TemporaryDirectory(prefix="jsengine-ml-soak-") as tmp:
                row = soak_swaps(backend, isolation, args.swaps, Path(tmp))
            rows.append(row)
            bad = row["wrong"] > 0 or any(row["leaked"].values()) or (args.check_memory and row["growth"] >= 0.10)
            failed |= bad
            print(f"swaps       {backend:8} {'':8} {isolation:8} swaps={row['swaps']:,} wrong={row['wrong']} "
                  f"RSS {row['rss_after_first_mib']:.0f} -> {row['rss_end_mib']:.0f} MiB ({row['growth']:+.1%}) "
                  f"leaked {row['leaked']} {row['ms_per_swap']:.0f} ms/swap{'  FAIL' if bad else ''}", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2), encoding="utf-8")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
