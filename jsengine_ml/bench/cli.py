"""``python -m jsengine_ml.bench [--quick] [--out DIR] [--backend NAME ...]`` (same as ``jsengine-ml bench``).

The hidden ``--_mem-probe SPEC`` runs one memory / load probe in this (fresh) process and prints
its result as one JSON line (see :func:`jsengine_ml.bench.measure.run_probe`).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .checks import BenchFailure


def add_arguments(ap: argparse.ArgumentParser, default_out: str) -> None:
    ap.add_argument("--quick", action="store_true", help="a smoke run: small sizes, few repeats, < ~60 s (CI)")
    ap.add_argument("--out", default=default_out, help=f"output folder: RESULTS.md, results.json, PNGs "
                                                       f"(default: {default_out})")
    ap.add_argument("--backend", action="append", help="backend to include (repeatable; default: all available)")


def run(quick: bool, out: str, backends: list[str] | None) -> int:
    """Run the benchmark; a failed run (outputs that disagree) prints why and returns 1."""
    from .runner import run_bench

    try:
        return run_bench(quick, Path(out), backends)
    except BenchFailure as exc:
        print(f"jsengine-ml bench: FAILED: {exc}", file=sys.stderr)
        return 1


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m jsengine_ml.bench", description="Benchmark jsengine-ml's engines and "
                                 "runtimes against numpy, onnxruntime, tfjs in Node and an HTTP service.")
    add_arguments(ap, "bench-out")
    ap.add_argument("--_mem-probe", dest="mem_probe", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.mem_probe:
        from .measure import ProbeSpec, probe_main

        print(json.dumps(probe_main(ProbeSpec(**json.loads(args.mem_probe)))))
        return 0
    return run(args.quick, args.out, args.backend)
