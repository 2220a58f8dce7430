"""The benchmark: baselines agree with the golden outputs, micro-batching is exact, --quick runs end to end."""

from __future__ import annotations

import json
import threading

import numpy as np
import pytest

from jsengine_ml import bench
from jsengine_ml.bench import REF_DIR, SECTIONS, NumpyModel, OrtModel, build_onnx, read_weights


@pytest.mark.parametrize("workload", ["wine", "digits_cnn"])
def test_numpy_and_onnx_forward_passes_match_the_golden_outputs(workload):
    spec, weights = read_weights(REF_DIR / workload)
    golden = np.load(REF_DIR / workload / "golden.npz")
    x = golden["x"].reshape(len(golden["x"]), -1).astype(np.float32)
    y = golden["y"].reshape(len(x), -1)
    assert np.abs(NumpyModel(spec, weights).predict(x) - y).max() <= 1e-4
    pytest.importorskip("onnxruntime")
    assert np.abs(OrtModel(build_onnx(spec, weights)).predict(x) - y).max() <= 1e-4


def test_minimal_onnx_writer_matches_onnx_helper_semantics():
    ort = pytest.importorskip("onnxruntime")
    spec, weights = read_weights(REF_DIR / "digits_cnn")
    nodes, inits, nf = bench._onnx_graph(spec, weights)
    sess = ort.InferenceSession(bench._encode_onnx(nodes, inits, nf), providers=["CPUExecutionProvider"])
    x = np.random.default_rng(0).uniform(size=(5, nf)).astype(np.float32)
    assert np.abs(sess.run(["y"], {"x": x})[0] - NumpyModel(spec, weights).predict(x)).max() <= 1e-4


def test_microbatch_results_are_exact_per_record_under_concurrency():
    from jsengine_ml.backends import available_backends
    from jsengine_ml.microbatch import MicroBatcher

    names = [b.name for b in available_backends() if b.available and b.name in ("v8", "quickjs")]
    if not names:
        pytest.skip("no v8/quickjs backend")
    rows = np.random.default_rng(2).standard_normal((400, 13)).astype(np.float32)
    expect = NumpyModel.from_dir(REF_DIR / "wine").predict(rows)
    got: dict[int, np.ndarray] = {}
    lock = threading.Lock()
    with MicroBatcher(path=str(REF_DIR / "wine"), backend=names[0], max_batch=32, max_delay_s=0.002) as mb:

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
    assert np.abs(np.stack([got[i] for i in range(len(rows))]) - expect).max() <= 1e-4


def test_quick_bench_writes_a_complete_report(tmp_path):
    assert bench.main(["--quick", "--out", str(tmp_path)]) == 0
    report = (tmp_path / "RESULTS.md").read_text(encoding="utf-8")
    for section in SECTIONS:
        assert f"## {section}\n" in report, section
    for png in ("throughput_wine.png", "throughput_digits_cnn.png", "latency_batch1.png"):
        assert (tmp_path / png).stat().st_size > 1000
    data = json.loads((tmp_path / "results.json").read_text())
    assert data["targets"], "the targets section must list measured targets"
    for workload in ("wine", "digits_cnn"):
        contenders = data["workloads"][workload]["contenders"]
        assert "numpy" in contenders
        for name, c in contenders.items():
            assert c["max_abs_diff"] is not None and c["max_abs_diff"] <= 1e-4, (workload, name)
