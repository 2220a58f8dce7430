"""Timing, latency and memory probes.

Throughput cells are medians over repeats with a time budget; a cell whose single run is estimated
above a limit is skipped. Memory (RSS per loaded model) and load times are measured in a fresh
subprocess per probe (``python -m jsengine_ml.bench --_mem-probe``), so that one probe's engines,
caches and allocator state do not leak into another's numbers.
"""

from __future__ import annotations

import gc
import json
import math
import os
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from .settings import Settings

perf = time.perf_counter


def median(xs: list[float]) -> float:
    return float(statistics.median(xs)) if xs else math.nan


def pct(xs: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(xs), q)) if xs else math.nan


@dataclass
class Cell:
    """One timed cell: median seconds per call, every timed run, the last run's output."""

    seconds: float
    times: list[float]
    output: Any

    @property
    def runs(self) -> int:
        return len(self.times)


def time_cell(fn: Callable[[], Any], estimate_s: float, st: Settings) -> Cell:
    """Median of ``fn()`` over up to ``st.repeats`` runs within ``st.cell_budget_s``.

    One untimed warm-up run first unless the cell is estimated to be expensive (then the previous
    batch size has warmed the code already, and a second run of a multi-second cell buys nothing).
    """
    if estimate_s * 4 < st.cell_budget_s:
        fn()
    times: list[float] = []
    out: Any = None
    start = perf()
    for _ in range(max(1, st.repeats)):
        t = perf()
        out = fn()
        times.append(perf() - t)
        if perf() - start > st.cell_budget_s:
            break
    return Cell(median(times), times, out)


def estimate(points: list[tuple[int, float]], n: int) -> float:
    """Seconds one run at batch ``n`` should take, from measured (batch, seconds) points: along the line
    through the last two (cost per row never below 0), or proportional to a single one (an upper bound)."""
    if not points:
        return 0.0
    n1, t1 = points[-1]
    if len(points) == 1:
        return t1 * n / n1
    n0, t0 = points[-2]
    return t1 + max(0.0, (t1 - t0) / (n1 - n0)) * (n - n1)


def latencies(fn: Callable[[], Any], samples: int, budget_s: float, minimum: int = 20, *, warm: bool = True
              ) -> list[float]:
    """Seconds per call of ``fn()`` (after one warm-up call): ``samples`` calls, fewer past the budget."""
    if warm:
        fn()
    out: list[float] = []
    start = perf()
    for _ in range(samples):
        t = perf()
        fn()
        out.append(perf() - t)
        if perf() - start > budget_s and len(out) >= minimum:
            break
    return out


def run_threads(target: Callable[[int], Any], n: int) -> float:
    """Run ``target(i)`` on ``n`` threads at once; the wall time until all have finished."""
    threads = [threading.Thread(target=target, args=(i,)) for i in range(n)]
    t = perf()
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    return perf() - t


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


# ---------------------------------------------------------------------- memory / load probes
@dataclass(frozen=True)
class ProbeSpec:
    """Load ``n`` models of one kind into a fresh process. ``kind``: numpy, onnxruntime, or a backend."""

    kind: str
    model_dir: str
    n: int
    runtime: str = "compiled"

    @property
    def label(self) -> str:
        if self.kind in ("numpy", "onnxruntime"):
            return self.kind
        return f"{self.kind}-{self.runtime}"


def run_probe(spec: ProbeSpec, timeout: float = 600) -> dict[str, Any]:
    """Run ``spec`` in a fresh interpreter; its result, or ``{"error": ...}``."""
    cmd = [sys.executable, "-m", "jsengine_ml.bench", "--_mem-probe", json.dumps(spec.__dict__)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s"}
    if proc.returncode != 0:
        return {"error": proc.stderr.strip()[-500:] or f"exit code {proc.returncode}"}
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


def _probe_loader(spec: ProbeSpec) -> tuple[Callable[[], Any], Callable[[], Any] | None, Callable[[Any], Any] | None]:
    """(load one model, create one bare engine, load one model onto a given engine) for ``spec``."""
    from pathlib import Path

    if spec.kind == "numpy":
        from .workloads import NumpyReference

        return (lambda: NumpyReference(spec.model_dir)), None, None
    if spec.kind == "onnxruntime":
        from ..topology import read_artifact_graph
        from .onnx import OrtModel, build_onnx

        blob = build_onnx(read_artifact_graph(Path(spec.model_dir) / "model.json"))
        return (lambda: OrtModel(blob)), None, None
    from ..backends import create_engine
    from ..model import load

    return (lambda: load(spec.model_dir, spec.kind, runtime=spec.runtime),
            lambda: create_engine(spec.kind),
            lambda engine: load(spec.model_dir, engine=engine, runtime=spec.runtime))


def probe_main(spec: ProbeSpec) -> dict[str, Any]:
    """The probe itself (in the child): one model loaded and closed first (one-time process costs:
    imports, engine platform set-up), then ``n`` models kept alive; RSS growth per model and loads."""
    from .workloads import NumpyReference, single_thread_blas

    single_thread_blas()
    load_one, make_engine, load_onto = _probe_loader(spec)
    row = np.zeros((1, math.prod(NumpyReference(spec.model_dir).input_shape)), np.float32)

    def load_and_score() -> Any:
        model = load_one()
        model.predict(row)  # a first prediction: lazily allocated buffers count as the model's
        return model

    t = perf()
    load_and_score().close()
    first_load = perf() - t
    gc.collect()
    base = rss_bytes()
    models, loads = [], []
    for _ in range(spec.n):
        t = perf()
        models.append(load_and_score())
        loads.append(perf() - t)
    gc.collect()
    result: dict[str, Any] = {
        **spec.__dict__, "label": spec.label, "rss_base": base, "rss_after": rss_bytes(),
        "per_model": (rss_bytes() - base) / spec.n, "load_s_median": median(loads), "load_s_min": min(loads),
        "first_load_s": first_load,
    }
    for m in models:
        m.close()
    if make_engine is not None and load_onto is not None and spec.runtime == "compiled":
        result.update(_load_split(make_engine, load_onto))
    return result


def _load_split(make_engine: Callable[[], Any], load_onto: Callable[[Any], Any], samples: int = 5) -> dict[str, Any]:
    """Where an engine model's load goes: a bare engine, and the model onto an existing engine."""
    engines, onto = [], []
    for _ in range(samples):
        t = perf()
        engine = make_engine()
        engines.append(perf() - t)
        t = perf()
        load_onto(engine).close()
        onto.append(perf() - t)
        engine.close()
    return {"engine_s_median": median(engines), "model_on_engine_s_median": median(onto)}
