"""MicroBatcher: every record gets exactly its own result; the model lives on the flusher thread."""

from __future__ import annotations

import threading
from types import SimpleNamespace

import numpy as np
import pytest

import jsengine_ml
from jsengine_ml.errors import EngineClosedError, InputError
from jsengine_ml.microbatch import MicroBatcher, RecordResult


class FakeModel:
    """Output row = [sum(row), first value, batch size]; records the threads that touched it."""

    def __init__(self, n_features: int = 4, fail_on: float | None = None, gate: threading.Event | None = None):
        self.metadata = SimpleNamespace(n_features=n_features)
        self.threads = {threading.get_ident()}
        self.batch_sizes: list[int] = []
        self.closed = False
        self.fail_on = fail_on
        self.gate = gate  # when given, predict() waits for it (keeps the flusher busy)
        self.entered = threading.Event()

    def predict(self, x: np.ndarray) -> np.ndarray:
        self.threads.add(threading.get_ident())
        self.entered.set()
        if self.gate is not None:
            assert self.gate.wait(30)
        assert x.ndim == 2
        if self.fail_on is not None and (x[:, 0] == self.fail_on).any():
            raise ValueError("boom")
        self.batch_sizes.append(len(x))
        return np.stack([x.sum(axis=1), x[:, 0], np.full(len(x), len(x), np.float32)], axis=1)

    def close(self) -> None:
        self.threads.add(threading.get_ident())
        self.closed = True


def _factory(holder: list, **kw):
    def make() -> FakeModel:
        m = FakeModel(**kw)
        holder.append(m)
        return m

    return make


def test_each_record_gets_its_own_result_from_many_threads():
    holder: list[FakeModel] = []
    rng = np.random.default_rng(0)
    rows = rng.standard_normal((4000, 4)).astype(np.float32)
    results: dict[int, np.ndarray] = {}
    lock = threading.Lock()
    with MicroBatcher(_factory(holder), max_batch=64, max_delay_s=0.002) as mb:

        def worker(lo: int, hi: int) -> None:
            futs = [(i, mb.submit(rows[i])) for i in range(lo, hi)]
            got = {i: f.result(timeout=30) for i, f in futs}
            with lock:
                results.update(got)

        threads = [threading.Thread(target=worker, args=(k * 250, (k + 1) * 250)) for k in range(16)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    model = holder[0]
    assert len(results) == len(rows)
    for i, out in results.items():
        assert out[0] == pytest.approx(float(rows[i].sum()), abs=1e-5)
        assert out[1] == rows[i][0]
    assert max(model.batch_sizes) <= 64
    assert sum(model.batch_sizes) == len(rows)
    assert model.closed


def test_model_is_created_used_and_closed_on_the_flusher_thread():
    holder: list[FakeModel] = []
    mb = MicroBatcher(_factory(holder), max_batch=8, max_delay_s=0.001)
    mb.predict_one([1, 2, 3, 4], timeout=10)
    mb.close()
    (model,) = holder
    assert threading.get_ident() not in model.threads
    assert len(model.threads) == 1


def test_timer_flushes_a_partial_batch_and_full_batches_flush_at_n():
    holder: list[FakeModel] = []
    gate = threading.Event()
    with MicroBatcher(_factory(holder, gate=gate), max_batch=1000, max_delay_s=0.005) as mb:
        (model,) = holder
        first = mb.submit([1, 1, 1, 1])  # one record never fills a batch: the timer flushes it
        assert model.entered.wait(10)
        # while the flusher is held in predict(), 2,500 records fill two batches and start a third
        futs = mb.submit_many(np.ones((2500, 4), np.float32))
        gate.set()
        assert first.result(timeout=10)[2] == 1
        sizes = [int(f.result(timeout=30)[2]) for f in futs]
    assert model.batch_sizes == [1, 1000, 1000, 500]  # flushed at N = 1,000 rows, then the rest by the timer
    assert sizes == [1000] * 2000 + [500] * 500
    stats = mb.stats()
    assert (stats["flush_full"], stats["flush_timer"], stats["records"]) == (2, 2, 2501)


def test_close_scores_everything_already_submitted_and_refuses_more():
    holder: list[FakeModel] = []
    mb = MicroBatcher(_factory(holder), max_batch=10_000, max_delay_s=0.005)
    futs = mb.submit_many(np.arange(40, dtype=np.float32).reshape(10, 4))
    mb.close()
    assert [f.result(timeout=10)[1] for f in futs] == [float(4 * i) for i in range(10)]
    with pytest.raises(EngineClosedError, match="closed"):
        mb.submit([0, 0, 0, 0])
    mb.close()  # idempotent


def test_bad_rows_and_bad_settings_are_refused():
    holder: list[FakeModel] = []
    with MicroBatcher(_factory(holder), max_batch=4, max_delay_s=0.001) as mb:
        with pytest.raises(InputError):
            mb.submit([1, 2, 3])
        with pytest.raises(InputError):
            mb.submit(np.zeros((2, 4)))
        assert isinstance(mb.submit(np.zeros((1, 4))), RecordResult)
    with pytest.raises(ValueError):
        MicroBatcher(_factory(holder), max_delay_s=0.05)  # T must be ≤ 5 ms
    with pytest.raises(ValueError):
        MicroBatcher(_factory(holder), max_batch=0)
    with pytest.raises(ValueError):
        MicroBatcher()


def test_predict_errors_reach_only_that_batch_and_the_batcher_keeps_going():
    holder: list[FakeModel] = []
    with MicroBatcher(_factory(holder, fail_on=-1.0), max_batch=1, max_delay_s=0.001) as mb:
        bad = mb.submit([-1, 0, 0, 0])
        with pytest.raises(ValueError, match="boom"):
            bad.result(timeout=10)
        assert mb.predict_one([2, 0, 0, 0], timeout=10)[0] == 2


def test_factory_errors_raise_from_the_constructor():
    def broken():
        raise RuntimeError("cannot load")

    with pytest.raises(RuntimeError, match="cannot load"):
        MicroBatcher(broken)


def test_real_engine_matches_a_batch_predict():
    from jsengine_ml.backends import available_backends
    from jsengine_ml.testing import WINE_DIR, numpy_wine_predict

    names = [b.name for b in available_backends() if b.available and b.name in ("v8", "quickjs")]
    if not names:
        pytest.skip("no v8/quickjs backend")
    rows = np.random.default_rng(1).standard_normal((300, 13)).astype(np.float32)
    with MicroBatcher(path=str(WINE_DIR), backend=names[0], max_batch=128, max_delay_s=0.002) as mb:
        futs = mb.submit_many(rows)
        got = np.stack([f.result(timeout=60) for f in futs])
    assert np.abs(got - numpy_wine_predict(WINE_DIR, rows)).max() <= 1e-4


@pytest.mark.parametrize("backend", [b.name for b in jsengine_ml.available_backends() if b.available])
def test_named_records_of_a_multi_input_model_get_their_own_named_outputs(backend: str) -> None:
    from jsengine_ml.conformance.model_suite import golden_named, reference_models_dir

    feeds, want = golden_named("multi_io")
    n = len(feeds["tokens"])
    with MicroBatcher(path=str(reference_models_dir() / "multi_io"), backend=backend, max_batch=4) as mb:
        results = [mb.submit({name: rows[i] for name, rows in feeds.items()}) for i in range(n)]
        for i, result in enumerate(results):
            got = result.result(60)
            assert set(got) == set(want)
            for name in want:
                np.testing.assert_allclose(got[name], want[name][i], atol=1e-5, err_msg=f"record {i} {name}")
        with pytest.raises(InputError, match=r"named inputs \['numeric', 'tokens'\]"):
            mb.submit(feeds["numeric"][0])
        with pytest.raises(InputError, match="input 'tokens' takes 12 values per record, got 3"):
            mb.submit({"numeric": feeds["numeric"][0], "tokens": [1, 2, 3]})
        with pytest.raises(InputError, match="integer ids"):
            mb.submit({"numeric": feeds["numeric"][0], "tokens": np.full(12, 0.5)})
        assert mb.stats()["records"] == n
