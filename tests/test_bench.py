"""The benchmark: its yardsticks match Keras, every contender agrees, a wrong one fails the run, and
``--quick`` writes every section and plot."""

from __future__ import annotations

import json
import shutil
import threading
from pathlib import Path

import numpy as np
import pytest

from jsengine_ml.backends import available_backends
from jsengine_ml.bench import REF_DIR, SECTIONS, WORKLOADS, BenchFailure, NumpyReference, run_bench
from jsengine_ml.bench.checks import TOLERANCE
from jsengine_ml.bench.contenders import Contender, EngineFactory, build_contenders
from jsengine_ml.bench.measure import estimate
from jsengine_ml.bench.onnx import OrtModel, build_onnx
from jsengine_ml.bench.settings import Settings
from jsengine_ml.bench.targets import target_onnx

BACKENDS = [b.name for b in available_backends() if b.available]
PNG = b"\x89PNG\r\n\x1a\n"


# ---------------------------------------------------------------------- yardsticks
@pytest.mark.parametrize("workload", list(WORKLOADS))
def test_numpy_reference_matches_the_keras_golden_outputs(workload):
    x, y = WORKLOADS[workload].golden()
    got = NumpyReference(REF_DIR / workload).predict(x)
    assert got.shape == y.shape
    assert np.abs(got - y).max() <= TOLERANCE


@pytest.mark.parametrize("workload", ["wine", "digits_cnn"])
def test_onnxruntime_matches_the_keras_golden_outputs(workload):
    x, y = WORKLOADS[workload].golden()
    got = OrtModel(build_onnx(WORKLOADS[workload].graph)).predict(x)
    assert got.shape == y.shape
    assert np.abs(got - y).max() <= TOLERANCE


def test_the_onnx_builder_refuses_layers_it_does_not_cover():
    with pytest.raises(NotImplementedError, match="LSTM"):
        build_onnx(WORKLOADS["sequence_lstm"].graph)


def test_without_onnx_the_onnxruntime_contender_is_left_out(tmp_path):
    factory = EngineFactory(Settings.smoke(), tmp_path)
    loaded, failed = build_contenders(WORKLOADS["wine"], [], factory, ort_missing="no onnx here")
    assert [c.name for c in loaded] == ["numpy"] and not failed
    loaded, _ = build_contenders(WORKLOADS["wine"], [], factory, ort_missing=None)
    assert [c.name for c in loaded] == ["numpy", "onnxruntime-1t"]


def test_cell_estimates_follow_the_last_two_batch_sizes():
    assert estimate([], 64) == 0.0
    assert estimate([(1, 0.01)], 64) == pytest.approx(0.64)  # one point: proportional (an upper bound)
    assert estimate([(1, 0.01), (8, 0.017)], 64) == pytest.approx(0.017 + 0.001 * 56)
    assert estimate([(1, 0.01), (64, 0.009)], 1000) == pytest.approx(0.009)  # noise: never a negative slope


def test_target_1_divides_onnxruntime_rows_per_second_by_v8s():
    def entry(seconds):
        return {"times": {10000: seconds}, "skipped": {}}

    res = {"workloads": {w: {"contenders": {"v8-compiled": entry(2.0), "onnxruntime-1t": entry(1.0),
                                            "numpy": entry(3.0)}} for w in ("wine", "digits_cnn")}}
    res["workloads"]["digits_cnn"]["contenders"]["v8-compiled"] = entry(2.5)
    wine, cnn = target_onnx(res, Settings.full())
    assert (wine.ratio, wine.met) == (2.0, True)
    assert (cnn.ratio, cnn.met) == (2.5, False)


# ---------------------------------------------------------------------- a wrong contender fails the run
class _Off(Contender):
    """The numpy reference plus an offset, from ``from_rows`` rows per batch on."""

    def __init__(self, name, offset, from_rows=0):
        super().__init__(name, "numpy", "", NumpyReference(REF_DIR / "wine"), 0.0)
        self.offset, self.from_rows = offset, from_rows

    def predict(self, x):
        out = self.model.predict(x)
        return out + self.offset if len(x) > self.from_rows else out


@pytest.mark.parametrize(("offset", "from_rows", "rows"), [(1e-3, 0, "8 rows"), (0.5, 100, "1,000 rows")])
def test_a_contender_that_disagrees_fails_the_run_naming_it(tmp_path, offset, from_rows, rows):
    """Wrong on every batch: caught by the check before timing; wrong only on big batches: caught by
    the check of the timed runs. Either way nothing is written."""
    make = lambda w: _Off("deliberately-wrong", offset, from_rows) if w.name == "wine" else None  # noqa: E731
    with pytest.raises(BenchFailure) as info:
        run_bench(True, tmp_path / "out", BACKENDS[:1], workloads=["wine"], extra_contenders=[make])
    message = str(info.value)
    assert "deliberately-wrong disagrees with the numpy reference on wine" in message
    assert rows in message and f"max abs diff {offset:.3g}" in message
    assert not (tmp_path / "out").exists()


def test_the_cli_exits_1_when_the_run_fails(monkeypatch, tmp_path, capsys):
    from jsengine_ml import cli
    from jsengine_ml.bench import runner

    def failing(*args, **kwargs):
        raise BenchFailure("v8-compiled disagrees with the numpy reference on wine")

    monkeypatch.setattr(runner, "run_bench", failing)
    assert cli.main(["bench", "--quick", "--out", str(tmp_path)]) == 1
    assert "FAILED: v8-compiled disagrees" in capsys.readouterr().err


# ---------------------------------------------------------------------- the quick run
@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench-quick")
    assert run_bench(True, out) == 0
    return out, json.loads((out / "results.json").read_text(encoding="utf-8"))


def test_quick_bench_writes_every_section_in_order(quick_run):
    out, _ = quick_run
    report = (out / "RESULTS.md").read_text(encoding="utf-8")
    positions = [report.find(f"\n## {section}\n") for section in SECTIONS]
    assert -1 not in positions, [s for s, p in zip(SECTIONS, positions, strict=True) if p == -1]
    assert positions == sorted(positions)
    for section, start in zip(SECTIONS, positions, strict=True):  # every section has a body
        body = report[start + len(section) + 5 :].split("\n## ", 1)[0]
        assert len(body.strip()) > 40, section


def test_quick_bench_writes_every_plot(quick_run):
    out, data = quick_run
    expected = [f"throughput_{w}.png" for w in WORKLOADS] + ["latency_batch1.png"]
    assert sorted(data["plots"]) == sorted(expected)
    report = (out / "RESULTS.md").read_text(encoding="utf-8")
    for png in expected:
        assert (out / png).read_bytes()[:8] == PNG and (out / png).stat().st_size > 10_000, png
        assert f"]({png})" in report, png


def test_quick_bench_every_contender_agrees_with_the_reference(quick_run):
    _, data = quick_run
    for w, wr in data["workloads"].items():
        assert wr["reference_vs_golden"] <= TOLERANCE, w
        names = set(wr["contenders"])
        expected = {"numpy"} | {f"{b}-{v}" for b in BACKENDS for v in ("compiled", "tfjs")}
        expected |= {"onnxruntime-1t"} if WORKLOADS[w].onnx else set()
        expected |= {"tfjs-node"} if shutil.which("node") else set()
        expected |= {"http-service"} if w == "wine" else set()
        assert expected <= names, (w, expected - names, wr["failed"])
        for name, c in wr["contenders"].items():
            assert c["max_abs_diff"] is not None and c["max_abs_diff"] <= TOLERANCE, (w, name)
            assert c["times"], (w, name)  # at least one batch size was measured
            assert c["latency"], (w, name)


def test_quick_bench_reports_the_targets_and_where_v8s_time_goes(quick_run):
    out, data = quick_run
    ids = [t["id"] for t in data["targets"]]
    assert ids.count("1") == 2 and ids.count("3") == 1 and ids.count("4") == 2
    assert ids.count("2") == len(WORKLOADS) * len({"quickjs", "duktape"} & set(BACKENDS))
    for t in data["targets"]:
        assert t["verdict"] in ("met", "missed"), t  # every target was measured in the quick run
        assert t["ratio"] is not None and t["ratio"] > 0, t
    report = (out / "RESULTS.md").read_text(encoding="utf-8")
    for t in data["targets"]:
        assert f"| {t['name']} |" in report
    if "v8" in BACKENDS:
        for w in ("wine", "digits_cnn"):
            for n in ("1", str(max(Settings.smoke().sizes))):
                s = data["split"][w][n]
                assert min(s["predict_s"], s["kernel_s"], s["crossing_s"], s["ort_s"]) > 0, (w, n, s)
                assert s["python_s"] == pytest.approx(s["predict_s"] - s["kernel_s"] - s["crossing_s"])
        assert data["memory"]["wine/v8-compiled"]["n"] == Settings.smoke().mem_models


def test_quick_bench_sections_that_catch_errors_caught_none(quick_run):
    """The memory probes, the data path, micro-batching and hot swap record a contender's error
    instead of raising it: every entry must hold real measurements, not an error."""
    _, data = quick_run
    for section in ("memory", "transfer", "microbatch", "hotswap"):
        entries = data[section]
        assert entries, f"{section}: nothing was measured"
        errors = {name: entry["error"] for name, entry in entries.items() if "error" in entry}
        assert not errors, (section, errors)
    assert sorted(data["transfer"]) == sorted(BACKENDS)
    for backend, t in data["transfer"].items():
        assert min(t["put_MBps"], t["get_MBps"], t["roundtrip_MBps"], t["call_overhead_s"]) > 0, (backend, t)
    for label, m in data["memory"].items():
        assert m["n"] > 0 and m["load_s_median"] > 0 and m["rss_after"] > 0, (label, m)
    for backend, m in data["microbatch"].items():
        assert m["best_rps"] > 0 and m["wrong"] == 0 and m["max_abs_diff"] <= TOLERANCE, (backend, m)
    for label, h in data["hotswap"].items():
        assert h["swaps"] > 0 and h["pause_p50_s"] > 0 and h["wrong"] == 0, (label, h)


# ---------------------------------------------------------------------- micro-batching, as benchmarked
def test_microbatch_results_are_exact_per_record_under_concurrency():
    from jsengine_ml.microbatch import MicroBatcher

    names = [b for b in BACKENDS if b in ("v8", "quickjs")]
    if not names:
        pytest.skip("no v8/quickjs backend")
    rows = np.random.default_rng(2).standard_normal((400, 13)).astype(np.float32)
    expect = NumpyReference(REF_DIR / "wine").predict(rows)
    got: dict[int, np.ndarray] = {}
    lock = threading.Lock()
    with MicroBatcher(path=str(Path(REF_DIR / "wine")), backend=names[0], max_batch=32, max_delay_s=0.002) as mb:

        def worker(k: int) -> None:
            mine = {i: mb.submit(rows[i]).result(timeout=60) for i in range(k, len(rows), 8)}
            with lock:
                got.update(mine)

        threads = [threading.Thread(target=worker, args=(k,)) for k in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert sorted(got) == list(range(len(rows)))
    assert np.abs(np.stack([got[i] for i in range(len(rows))]) - expect).max() <= TOLERANCE
