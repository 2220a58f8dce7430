"""``run_bench``: the whole benchmark, section by section, into RESULTS.md, results.json and plots."""

from __future__ import annotations

import contextlib
import json
import math
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from .._types import Array
from .checks import TOLERANCE, BenchFailure, check, fail_on
from .contenders import Contender, EngineFactory, HttpContender, build_contenders, run_node
from .measure import ProbeSpec, perf, run_probe
from .settings import Settings
from .targets import evaluate
from .throughput import measure_contenders, node_entry, reference_outputs, sanity_check
from .workloads import WORKLOADS, NumpyReference, Workload, single_thread_blas

#: A test hook: builds an extra in-process contender for a workload (or None for none).
ExtraContender = Callable[[Workload], "Contender | None"]
HTTP_WORKLOADS = ("wine",)
SPLIT_WORKLOADS = ("wine", "digits_cnn")


class Progress:
    """A tqdm bar on stderr (plain lines without tqdm)."""

    def __init__(self) -> None:
        try:
            from tqdm import tqdm  # type: ignore[import-untyped,unused-ignore]

            self.bar: Any = tqdm(total=1, desc="bench", unit="step", file=sys.stderr, dynamic_ncols=True,
                                 mininterval=0.5, disable=None)
        except ImportError:  # pragma: no cover
            self.bar = None

    def add(self, n: int) -> None:
        if self.bar is not None:
            self.bar.total += n
            self.bar.refresh()

    def step(self, desc: str) -> None:
        if self.bar is not None:
            self.bar.set_description(desc[:40])
            self.bar.update(1)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def select_backends(requested: list[str] | None) -> tuple[list[str], list[str]]:
    """(usable backends among the requested ones, notes about the others)."""
    from ..backends import available_backends

    infos = {i.name: i for i in available_backends()}
    names, notes = [], []
    for name in requested or list(infos):
        info = infos.get(name)
        if info is None:
            notes.append(f"backend {name} is unknown")
        elif info.available:
            names.append(name)
        else:
            notes.append(f"backend {name} unavailable: {info.reason}")
    return names, notes


def check_reference(w: Workload, ort_missing: str | None) -> dict[str, Any]:
    """The numpy reference (and onnxruntime, where it applies) against the Keras golden outputs."""
    x, y = w.golden()
    out: dict[str, Any] = {"ort_vs_golden": None}
    out["reference_vs_golden"], bad = check(w.name, "the numpy reference", NumpyReference(w.model_dir).predict(x), y,
                                            against="the Keras golden outputs")
    bads = [bad] if bad else []
    if w.onnx and ort_missing is None:
        from .onnx import OrtModel

        out["ort_vs_golden"], bad = check(w.name, "onnxruntime-1t", OrtModel.from_graph(w.graph).predict(x), y,
                                          against="the Keras golden outputs")
        bads += [bad] if bad else []
    fail_on(bads)
    return out


class Bench:
    """One run: settings, the backends and workloads in play, the results as they come in."""

    def __init__(self, st: Settings, backends: list[str], workloads: list[Workload], tmp: Path,
                 extra: Sequence[ExtraContender], notes: list[str]):
        from .onnx import unavailable

        self.st, self.backends, self.workloads, self.tmp, self.extra = st, backends, workloads, tmp, extra
        self.ort_missing = unavailable()
        self.rng = np.random.default_rng(20240611)
        self.xs = {w.name: w.rows(self.rng, max(st.sizes)) for w in workloads}
        self.res: dict[str, Any] = {"quick": st.quick, "settings": asdict(st), "workloads": {}, "split": {},
                                    "memory": {}, "transfer": {}, "microbatch": {}, "hotswap": {}, "notes": notes}
        self.prog = Progress()
        self.phases: dict[str, float] = self.res.setdefault("phases_s", {})
        if self.ort_missing:
            notes.append(f"onnxruntime contender skipped: {self.ort_missing}")

    @contextlib.contextmanager
    def phase(self, name: str) -> Iterator[None]:
        t = perf()
        try:
            yield
        finally:
            self.phases[name] = perf() - t

    # ------------------------------------------------------------------ workloads
    def run_workloads(self) -> None:
        factory = EngineFactory(self.st, self.tmp)
        try:
            for w in self.workloads:
                with self.phase(f"workload {w.name}"):
                    self.res["workloads"][w.name] = self.workload(w, factory)
        finally:
            factory.close()
        self.res["bundle_sizes"] = factory.bundle_sizes()
        with self.phase("tfjs-node (all workloads)"):
            node, why = run_node(self.workloads, self.xs, self.st, self.tmp)
        if why:
            self.res["notes"].append(f"tfjs-node skipped: {why}")
        for w in self.workloads:
            res = node.get(w.name)
            if res is not None and "error" in res:
                self.res["notes"].append(f"{w.name}: tfjs-node failed: {res['error']}")
            elif res is not None:
                want = reference_outputs(w, self.xs[w.name], self.st)
                self.res["workloads"][w.name]["contenders"]["tfjs-node"] = node_entry(w, res, want, self.st)

    def _contenders(self, w: Workload, factory: EngineFactory) -> tuple[list[Contender], dict[str, str]]:
        contenders, failed = build_contenders(w, self.backends, factory, self.ort_missing)
        contenders += [c for make in self.extra if (c := make(w)) is not None]
        if w.name in HTTP_WORKLOADS:
            try:
                contenders.append(HttpContender(w, max_requests=self.st.http_requests * 4 + 10_000))
            except Exception as exc:
                failed["http-service"] = f"{type(exc).__name__}: {exc}"
        for name, err in failed.items():
            self.res["notes"].append(f"{w.name}: {name} failed to load: {err}")
        return contenders, failed

    def workload(self, w: Workload, factory: EngineFactory) -> dict[str, Any]:
        st, x = self.st, self.xs[w.name]
        out = {"title": w.title, **check_reference(w, self.ort_missing)}
        want = reference_outputs(w, x, st)
        contenders, out["failed"] = self._contenders(w, factory)
        self.prog.add(len(contenders) + len(st.sizes))
        try:
            checked = sanity_check(w, contenders, x, want, st)
            out["contenders"] = measure_contenders(w, contenders, x, want, checked, st, self.prog.step)
            self.while_loaded(w, {c.name: c for c in contenders}, x, want)
        finally:
            for c in contenders:
                with contextlib.suppress(Exception):
                    c.close()
        return out

    def while_loaded(self, w: Workload, by_name: dict[str, Contender], x: Array,
                     want: dict[int, Array]) -> None:
        """Sections that need this workload's models loaded: V8's time split, JSON path, HTTP clients."""
        from .datapath import bench_json_path
        from .split import split_one, split_sizes
        from .streaming import bench_http_clients

        v8 = by_name.get("v8-compiled")
        ort = by_name.get("onnxruntime-1t")
        if v8 is not None and w.name in SPLIT_WORKLOADS:
            self.res["split"][w.name] = {n: split_one(v8.model, ort.model if ort else None, x, n, self.st)
                                         for n in split_sizes(self.st)}
            self.prog.step(f"{w.name}: V8 time split")
        if v8 is not None and w.name == "wine":
            self.res["json_path"] = bench_json_path(w.name, v8.model, x, want, self.st)
            self.prog.step("wine: JSON path")
        http = by_name.get("http-service")
        if isinstance(http, HttpContender):
            self.res["http"] = bench_http_clients(http.service, x, self.st)
            self.prog.step("wine: HTTP clients")

    # ------------------------------------------------------------------ other sections
    def run_memory(self) -> None:
        specs = []
        if "v8" in self.backends:
            specs.append(("wine", ProbeSpec("v8", str(WORKLOADS["wine"].model_dir), self.st.mem_models)))
        if self.st.mem_other_models:
            for w in self.st.mem_workloads:
                d = str(WORKLOADS[w].model_dir)
                kinds = [("numpy", "compiled"), ("onnxruntime", "compiled")]
                kinds += [(b, rt) for b in self.backends for rt in ("compiled", "tfjs")]
                specs += [(w, ProbeSpec(k, d, self.st.mem_other_models, rt)) for k, rt in kinds
                          if (w, k) != ("wine", "v8") or rt != "compiled"]
        self.prog.add(len(specs))
        for w, spec in specs:
            self.res["memory"][f"{w}/{spec.label}"] = run_probe(spec)
            self.prog.step(f"memory {w} {spec.label}")

    def run_transfer(self) -> None:
        from .datapath import bench_transfer

        self.prog.add(len(self.backends))
        for be in self.backends:
            self.res["transfer"][be] = _guarded(partial(bench_transfer, be, self.st, self.rng))
            self.prog.step(f"transfer {be}")

    def run_streaming(self) -> None:
        from .streaming import bench_hotswap, bench_microbatch

        wine = WORKLOADS["wine"]
        x = self.xs["wine"] if "wine" in self.xs else wine.rows(self.rng, 1000)
        backends = self.backends[: self.st.stream_backends] if self.st.stream_backends else self.backends
        self.prog.add(2 * len(backends))
        for be in backends:
            self.res["microbatch"][be] = _guarded(partial(bench_microbatch, be, wine.model_dir, x, self.st))
            self.prog.step(f"micro-batching {be}")
            for bundles in (False, True) if be in self.backends[: self.st.hotswap_bundle_backends] else (False,):
                label = f"{be}-tfjs-bundle" if bundles else be
                tmp = Path(tempfile.mkdtemp(prefix=f"hs-{label}-", dir=self.tmp))
                self.res["hotswap"][label] = _guarded(partial(bench_hotswap, be, self.st.hotswap_swaps, tmp,
                                                              bundles=bundles))
            self.prog.step(f"hot swap {be}")
        bad = [f"micro-batching on {be}: max abs diff {m['max_abs_diff']:.3g}, {m['wrong']} wrong records"
               for be, m in self.res["microbatch"].items()
               if "error" not in m and (m["max_abs_diff"] > TOLERANCE or m["wrong"])]
        bad += [f"hot swap on {label}: {h['wrong']} versions scored wrong"
                for label, h in self.res["hotswap"].items() if h.get("wrong")]
        if bad:
            raise BenchFailure("streaming results disagree with the numpy reference: " + "; ".join(bad))


def _guarded(fn: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    try:
        return fn()
    except BenchFailure:
        raise
    except Exception as exc:
        return {"error": f"{type(exc).__name__}: {str(exc).splitlines()[0][:300] if str(exc) else ''}"}


def _jsonable(o: Any) -> Any:
    if isinstance(o, dict):
        return {str(k): _jsonable(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [_jsonable(v) for v in o]
    if isinstance(o, np.ndarray):
        return None
    if isinstance(o, (np.floating, float)):
        return float(o) if math.isfinite(o) else None
    if isinstance(o, np.integer):
        return int(o)
    return o


def print_summary(res: dict[str, Any], report: Path) -> None:
    print(f"jsengine-ml bench: {res['elapsed_s']:.0f} s, report {report}")
    for w, wr in res["workloads"].items():
        worst = max(wr["contenders"].items(), key=lambda kv: kv[1]["max_abs_diff"])
        print(f"  {w}: {len(wr['contenders'])} contenders agree with the numpy reference "
              f"(worst {worst[0]} {worst[1]['max_abs_diff']:.1e}); reference vs Keras {wr['reference_vs_golden']:.1e}")
    for t in res["targets"]:
        detail = f" ({t['detail']})" if t["detail"] else ""
        print(f"  [{t['verdict'].upper():6}] {t['id']}. {t['name']}: {t['measured']}{detail}")
    for n in res["notes"]:
        print(f"  note: {n}")


def run_bench(quick: bool, out_dir: Path, backends: list[str] | None = None, *,
              workloads: list[str] | None = None, extra_contenders: Sequence[ExtraContender] = ()) -> int:
    """Run the benchmark; write RESULTS.md, results.json and PNG plots into ``out_dir``; return 0.

    Raises :class:`BenchFailure` when the numpy reference misses the Keras outputs or any contender's
    outputs disagree with the reference (nothing is written then). ``workloads`` and
    ``extra_contenders`` narrow or extend the run (tests).
    """
    from .machine import machine_info
    from .plots import write_plots
    from .report import write_report

    t0 = perf()
    st = Settings.for_run(quick)
    out_dir = Path(out_dir)
    names, notes = select_backends(backends)
    chosen = [WORKLOADS[w] for w in (workloads or list(WORKLOADS))]
    with tempfile.TemporaryDirectory(prefix="jsml-bench-") as tmpd:
        bench = Bench(st, names, chosen, Path(tmpd), extra_contenders, notes)
        blas, restore_blas = single_thread_blas()
        with bench.phase("set-up (backends, machine, rows)"):
            bench.res["machine"] = {**machine_info(), "numpy BLAS": blas}
        try:
            bench.run_workloads()
            if not workloads:
                for name, run in (("memory probes", bench.run_memory), ("data path", bench.run_transfer),
                                  ("micro-batching and hot swap", bench.run_streaming)):
                    with bench.phase(name):
                        run()
        finally:
            bench.prog.close()
            restore_blas()
    res = bench.res
    res["targets"] = [t.as_dict() for t in evaluate(res, st)]
    out_dir.mkdir(parents=True, exist_ok=True)
    with bench.phase("plots"):
        res["plots"] = write_plots(res, out_dir)
    res["elapsed_s"] = perf() - t0
    report = write_report(res, st, out_dir)
    (out_dir / "results.json").write_text(json.dumps(_jsonable(res), indent=1), encoding="utf-8")
    print_summary(res, report)
    return 0
