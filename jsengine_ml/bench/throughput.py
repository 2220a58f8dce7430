"""Per workload: check every contender against the numpy reference, then time it.

Before any timing, each contender scores the same ``check_rows`` rows and must match the numpy
reference within :data:`~jsengine_ml.bench.checks.TOLERANCE`; the outputs of the last timed run at
every batch size are checked the same way. Any disagreement fails the run (:class:`BenchFailure`).
"""

from __future__ import annotations

from functools import partial
from typing import Any

from .._types import Array
from .checks import Disagreement, check, fail_on
from .contenders import Contender
from .measure import Cell, estimate, latencies, perf, time_cell
from .settings import Settings
from .workloads import NumpyReference, Workload


def reference_outputs(w: Workload, x: Array, st: Settings) -> dict[int, Array]:
    """The numpy reference's outputs for the first ``n`` rows, for every batch size and the check rows."""
    ref = NumpyReference(w.model_dir)
    return {n: ref.predict(x[:n]) for n in sorted({*st.sizes, st.check_rows})}


def sanity_check(w: Workload, contenders: list[Contender], x: Array, want: dict[int, Array],
                 st: Settings) -> dict[str, tuple[float, float]]:
    """{contender: (max abs diff, seconds)} on the check rows; raises BenchFailure naming every disagreement."""
    out, bad = {}, []
    for c in contenders:
        t = perf()
        got = c.predict(x[: st.check_rows])
        seconds = perf() - t
        diff, d = check(w.name, c.name, got, want[st.check_rows])
        out[c.name] = (diff, seconds)
        if d:
            bad.append(d)
    fail_on(bad)
    return out


class _Track:
    """One contender's throughput measurements as they come in."""

    def __init__(self, c: Contender, checked: tuple[float, float]):
        self.c = c
        self.check_s = checked[1]  # the sanity check's run: also a warm-up, and a first estimate
        self.entry: dict[str, Any] = {
            "family": c.family, "variant": c.variant, "kind": c.kind, "load_s": c.load_s, "note": c.note,
            "times": {}, "runs": {}, "skipped": {}, "latency": [], "max_abs_diff": checked[0]}
        self.points: list[tuple[int, float]] = []
        self.one_row: list[float] = []  # the batch-1 cell's runs

    def estimate(self, n: int, x: Array, st: Settings) -> float:
        """Seconds one run at batch ``n`` should take; with a single measured size and a verdict of
        "too slow", a probe at ``st.probe_rows`` rows first (one point overestimates per-call-bound runs)."""
        if not self.points:
            return self.check_s * n / st.check_rows
        est = estimate(self.points, n)
        probe = st.probe_rows
        if (est > st.max_cell_s and probe and len(self.points) == 1 and self.points[0][0] < probe < n
                and estimate(self.points, probe) <= st.max_cell_s):
            t = perf()
            self.c.predict(x[:probe])
            self.points.append((probe, perf() - t))
            self.entry["probe"] = {probe: self.points[-1][1]}
            est = estimate(self.points, n)
        return est

    def record(self, w: Workload, n: int, cell: Cell, want: Array) -> Disagreement | None:
        """Keep a timed cell of batch ``n``; check its last output against ``want``."""
        r = self.entry
        r["times"][n], r["runs"][n] = cell.seconds, cell.runs
        self.points.append((n, cell.seconds))
        self.one_row = cell.times if n == 1 else self.one_row
        diff, bad = check(w.name, self.c.name, cell.output, want)
        r["max_abs_diff"] = max(r["max_abs_diff"], diff)
        return bad

    def latency(self, x: Array, st: Settings) -> None:
        """Batch-1 latency samples; a contender slower per call than the whole budget keeps its cell's runs."""
        one = x[:1]
        if self.one_row and min(self.one_row) > st.lat_budget_s:
            self.entry["latency"] = self.one_row
        else:
            self.entry["latency"] = latencies(lambda: self.c.predict(one), st.lat_samples, st.lat_budget_s,
                                              st.lat_min_samples, warm=not self.one_row)


def _time_batch(tracks: list[_Track], n: int, x: Array, st: Settings) -> dict[str, Cell]:
    """Cells of batch ``n`` by contender, one contender after the other (each cell warm: interleaving
    contenders run by run was tried, and costs the V8 model up to 3× after another engine's run has
    evicted its caches); the ones estimated above ``st.max_cell_s`` are skipped (noted in their entry)."""
    cells = {}
    for tr in tracks:
        est = tr.estimate(n, x, st)
        if est > st.max_cell_s:
            tr.entry["skipped"][n] = f"estimated {est:.1f} s per run > {st.max_cell_s:g} s"
        else:
            cells[tr.c.name] = time_cell(partial(tr.c.predict, x[:n]), est, st)
    return cells


def measure_contenders(w: Workload, contenders: list[Contender], x: Array, want: dict[int, Array],
                       checked: dict[str, tuple[float, float]], st: Settings, step: Any) -> dict[str, Any]:
    """Throughput at every batch size, then batch-1 latency, for every contender.

    Batch sizes are the outer loop, so that the contenders compared at one batch size are measured
    close together in time (the machine's load drifts). A cell estimated above ``st.max_cell_s`` is
    skipped. Each cell's last output is checked against the reference; a disagreement fails the run
    once the batch size is done.
    """
    tracks = [_Track(c, checked[c.name]) for c in contenders]
    for n in st.sizes:
        cells = _time_batch(tracks, n, x, st)
        bad = [d for tr in tracks if tr.c.name in cells and (d := tr.record(w, n, cells[tr.c.name], want[n]))]
        step(f"{w.name}: batch {n}")
        fail_on(bad)
    for tr in tracks:
        tr.latency(x, st)
        step(f"{w.name}: {tr.c.name} latency")
    return {tr.c.name: tr.entry for tr in tracks}


def node_entry(w: Workload, res: dict[str, Any], want: dict[int, Array], st: Settings) -> dict[str, Any]:
    """tfjs in Node's result as a contender entry; its outputs are checked like everyone's."""
    diff, bad = check(w.name, "tfjs-node", res["check"], want[st.check_rows])
    bads = [bad] if bad else []
    for n, out in res["outputs"].items():
        d, b = check(w.name, "tfjs-node", out, want[n])
        diff = max(diff, d)
        bads += [b] if b else []
    fail_on(bads)
    return {"family": "node", "variant": "", "kind": "peer", "load_s": res["load_s"], "note": res["note"],
            "times": res["times"], "runs": res["runs"], "skipped": res["skipped"], "latency": res["latency"],
            "max_abs_diff": diff, "rss_delta": res["rss_delta"]}
