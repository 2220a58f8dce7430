"""Hot swap: versions change under a thread that keeps scoring; broken versions never serve."""

from __future__ import annotations

import functools
import http.server
import itertools
import os
import shutil
import statistics
import threading
import time
from pathlib import Path

import numpy as np
import pytest

import jsengine_ml
from jsengine_ml.errors import ModelError, WrongThreadError
from jsengine_ml.hotswap import DirectorySource, HotSwapModel, HttpSource
from jsengine_ml.model import load
from jsengine_ml.testing import (
    WINE_DIR,
    numpy_wine_predict,
    wine_stream,
    write_broken_variant,
    write_wine_variant,
)

BACKENDS = [b.name for b in jsengine_ml.available_backends() if b.available]
FAST = next((b for b in ("v8", "quickjs", "duktape") if b in BACKENDS), None)
# Swaps per mode (offer() and DirectorySource): 20 per backend. Duktape loads the Wine model in
# ~1.5 s and holds the GIL meanwhile (and while scoring, ~100 ms a batch), so 20 swaps there take
# ~36 s: it does 6 + 6 unless JSENGINE_ML_HOTSWAP_FULL=1.
DEFAULT_SWAPS = 10
SWAPS: dict[str, int] = {} if os.environ.get("JSENGINE_ML_HOTSWAP_FULL") == "1" else {"duktape": 6}
ROWS = wine_stream()[2][:6]

pytestmark = pytest.mark.skipif(not BACKENDS, reason="no JS backend installed")


@pytest.fixture(scope="module")
def versions(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("versions")
    out = {"v1": Path(shutil.copytree(WINE_DIR, root / "v1"))}
    for i in range(2, 2 + 2 * DEFAULT_SWAPS + 1):
        out[f"v{i}"] = write_wine_variant(root / f"v{i}", seed=i)
    return out


@pytest.fixture(scope="module")
def refs(versions: dict[str, Path]) -> dict[str, np.ndarray]:
    return {v: numpy_wine_predict(p, ROWS) for v, p in versions.items()}


class Hammer:
    """A thread scoring ROWS back to back; records (version, max error vs that version's reference)."""

    def __init__(self, model: HotSwapModel, refs: dict[str, np.ndarray]):
        self.model, self.refs = model, refs
        self.tags: list[str] = []
        self.errors: list[float] = []
        self.failures: list[BaseException] = []
        self.latencies: list[float] = []
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="hammer")

    def _run(self) -> None:
        while not self._stop.is_set():
            t = time.perf_counter()
            try:
                y, v = self.model.predict_with_version(ROWS)
            except BaseException as exc:
                self.failures.append(exc)
                continue
            self.latencies.append(time.perf_counter() - t)
            self.tags.append(v)
            self.errors.append(float(np.abs(y - self.refs[v]).max()))

    def wait_for(self, version: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while not (self.tags and self.tags[-1] == version):
            assert not self.failures, self.failures
            assert time.monotonic() < deadline, f"{version} never went live (last {self.tags[-1:]})"
            time.sleep(0.002)

    def __enter__(self) -> Hammer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self.thread.join(60)


def _check_run(hammer: Hammer, order: list[str], model: HotSwapModel, backend: str) -> None:
    assert not hammer.failures, hammer.failures[:3]
    assert hammer.tags, "no predictions made"
    assert max(hammer.errors) < 1e-5
    # every prediction is tagged with the version live at that moment: tags follow the swap order
    rank = {v: i for i, v in enumerate(order)}
    ranks = [rank[t] for t in hammer.tags]
    assert ranks == sorted(ranks), "a prediction was tagged with a version that was no longer live"
    assert set(hammer.tags) == set(order)
    # one pause per swap, each the one its swap event carries; the scoring thread pays little
    assert model.swap_pauses == [event.pause_s for event in model.history]
    assert len(model.swap_pauses) == len(order) - 1
    assert statistics.median(model.swap_pauses) < 1e-3, f"{backend}: median swap pause {model.swap_pauses}"


@pytest.mark.parametrize("backend", BACKENDS)
def test_hammer_offer(backend: str, versions: dict[str, Path], refs: dict[str, np.ndarray]) -> None:
    n = SWAPS.get(backend, DEFAULT_SWAPS)
    order = [f"v{i}" for i in range(1, n + 2)]
    swaps: list[tuple[str | None, str]] = []
    with HotSwapModel(backend=backend, on_swap=lambda old, new: swaps.append((old, new))) as model:
        model.offer("v1", versions["v1"]).result(60)
        with Hammer(model, refs) as hammer:
            hammer.wait_for("v1")
            for v in order[1:]:
                assert model.offer(v, versions[v]).result(60) == v
                hammer.wait_for(v)
        _check_run(hammer, order, model, backend)
        assert swaps == list(itertools.pairwise(order))
        assert model.version == order[-1] and model.previous_version == order[-2]
        assert not model.failures


@pytest.mark.parametrize("backend", BACKENDS)
def test_hammer_directory_source(backend: str, versions: dict[str, Path], refs: dict[str, np.ndarray],
                                 tmp_path: Path) -> None:
    n = SWAPS.get(backend, DEFAULT_SWAPS)
    first = 1 + DEFAULT_SWAPS
    order = [f"v{i}" for i in range(first, first + n + 1)]
    shutil.copytree(versions[order[0]], tmp_path / order[0])
    with HotSwapModel(DirectorySource(tmp_path), backend=backend, poll_interval=0.02) as model:
        assert model.wait_ready(60) == order[0]
        with Hammer(model, refs) as hammer:
            hammer.wait_for(order[0])
            for v in order[1:]:
                # publish atomically: copy aside, then rename into the watched folder
                shutil.copytree(versions[v], tmp_path / f".{v}.tmp")
                (tmp_path / f".{v}.tmp").rename(tmp_path / v)
                hammer.wait_for(v)
        _check_run(hammer, order, model, backend)


def test_last_swap_pause_keeps_following_swaps_once_swap_pauses_is_full(versions: dict[str, Path]) -> None:
    """swap_pauses keeps the first max_pauses pauses; last_swap_pause_s is the latest swap's, always."""
    with HotSwapModel(backend=FAST, max_pauses=2) as model:
        assert model.last_swap_pause_s is None
        for v in ("v1", "v2", "v3", "v4"):
            model.offer(v, versions[v]).result(60)
            assert model.predict_with_version(ROWS)[1] == v
        events = model.history
        assert [(e.old, e.new) for e in events] == [("v1", "v2"), ("v2", "v3"), ("v3", "v4")]
        assert model.swap_pauses == [e.pause_s for e in events[:2]]
        assert model.last_swap_pause_s == events[-1].pause_s
        assert all(0 < e.pause_s < 1.0 for e in events)


@pytest.mark.parametrize("kind", ["corrupt-json", "shard-size", "nan-weights", "missing-shard", "wrong-width"])
def test_broken_version_keeps_serving(kind: str, versions: dict[str, Path], refs: dict[str, np.ndarray],
                                      tmp_path: Path) -> None:
    errors: list[tuple[str, BaseException]] = []
    broken = write_broken_variant(tmp_path / "v3", kind)
    with HotSwapModel(backend=FAST, on_error=lambda v, e: errors.append((v, e))) as model:
        model.offer("v1", versions["v1"]).result(60)
        model.predict(ROWS)
        model.offer("v2", versions["v2"]).result(60)
        y, v = model.predict_with_version(ROWS)
        assert v == "v2"
        with pytest.raises(ModelError):
            model.offer("v3", broken).result(60)
        for _ in range(3):
            y, v = model.predict_with_version(ROWS)
            assert v == "v2"
            np.testing.assert_allclose(y, refs["v2"], atol=1e-5)
        assert [e[0] for e in errors] == ["v3"]
        assert isinstance(errors[0][1], ModelError)
        assert [f.version for f in model.failures] == ["v3"]
        assert model.previous_version == "v1"


def test_smoke_rows_guard(versions: dict[str, Path], tmp_path: Path) -> None:
    bad = np.full((2, 13), 3e38, dtype=np.float32)  # overflows to inf -> NaN in every version
    with HotSwapModel(backend=FAST, smoke_rows=bad) as model:
        with pytest.raises(ModelError, match="smoke"):
            model.offer("v1", versions["v1"]).result(60)
        with pytest.raises(ModelError, match="no model version became ready"):
            model.wait_ready(0.2)


def test_rollback(versions: dict[str, Path], refs: dict[str, np.ndarray]) -> None:
    swaps: list[tuple[str | None, str]] = []
    with HotSwapModel(backend=FAST, on_swap=lambda o, n: swaps.append((o, n))) as model:
        with pytest.raises(ModelError, match="no previous"):
            model.offer("v1", versions["v1"]).result(60)
            model.predict(ROWS)
            model.rollback()
        model.offer("v2", versions["v2"]).result(60)
        assert model.predict_with_version(ROWS)[1] == "v2"
        assert model.rollback() == "v1"  # on the scoring thread: effective now
        assert model.version == "v1"
        y, v = model.predict_with_version(ROWS)
        assert v == "v1"
        np.testing.assert_allclose(y, refs["v1"], atol=1e-5)
        # from another thread: effective at the next predict
        result: list[str] = []
        t = threading.Thread(target=lambda: result.append(model.rollback()))
        t.start()
        t.join()
        assert result == ["v2"]
        assert model.predict_with_version(ROWS)[1] == "v2"
        assert swaps == [("v1", "v2"), ("v2", "v1"), ("v1", "v2")]
        assert [e.rollback for e in model.history] == [False, True, True]


def test_rollback_sticks_with_polling_source(versions: dict[str, Path], tmp_path: Path) -> None:
    for v in ("v1", "v2"):
        shutil.copytree(versions[v], tmp_path / v)
    (tmp_path / "CURRENT").write_text("v1\n")
    with HotSwapModel(DirectorySource(tmp_path), backend=FAST, poll_interval=0.02) as model:
        assert model.predict_with_version(ROWS)[1] == "v1"
        (tmp_path / "CURRENT").write_text("v2\n")
        deadline = time.monotonic() + 30
        while model.predict_with_version(ROWS)[1] != "v2":
            assert time.monotonic() < deadline
            time.sleep(0.01)
        model.rollback()
        time.sleep(0.2)  # several polls: the source still says v2, but we stay rolled back
        assert model.predict_with_version(ROWS)[1] == "v1"


def test_close_retired_on_scorer(versions: dict[str, Path]) -> None:
    with HotSwapModel(backend=FAST, close_retired="scorer", keep_previous=False) as model:
        for v in ("v1", "v2", "v3"):
            model.offer(v, versions[v]).result(60)
            assert model.predict_with_version(ROWS)[1] == v
        model.predict(ROWS)
        assert len(model.retire_times) == 2  # v1 and v2 closed on this (the scoring) thread


def test_directory_source_versions(tmp_path: Path) -> None:
    src = DirectorySource(tmp_path)
    assert src.current() is None
    for name in ("v2", "v10", "v9"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "model.json").write_text("{}")
    (tmp_path / "v11").mkdir()  # no model.json: not a version (yet)
    assert src.current() == "v10"
    (tmp_path / "CURRENT").write_text("v9\n")
    assert src.current() == "v9"
    with pytest.raises(ModelError):
        src.fetch("v11")


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def http_root(tmp_path: Path):
    root = tmp_path / "www"
    root.mkdir()
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(root)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield root, f"http://127.0.0.1:{httpd.server_address[1]}/models"
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_http_source(http_root: tuple[Path, str], versions: dict[str, Path], refs: dict[str, np.ndarray],
                     tmp_path: Path) -> None:
    root, base = http_root
    models = root / "models"
    models.mkdir()
    shutil.copytree(versions["v1"], models / "v1")
    (models / "CURRENT").write_text("v1\n")
    errors: list[str] = []
    source = HttpSource(base, cache_dir=tmp_path / "cache")
    with HotSwapModel(source, backend=FAST, poll_interval=0.05, on_error=lambda v, e: errors.append(v)) as model:
        y, v = model.predict_with_version(ROWS)
        assert v == "v1"
        np.testing.assert_allclose(y, refs["v1"], atol=1e-5)
        shutil.copytree(versions["v2"], models / "v2")
        (models / "CURRENT").write_text("v2\n")
        deadline = time.monotonic() + 30
        while (v := model.predict_with_version(ROWS)[1]) != "v2":
            assert time.monotonic() < deadline
            time.sleep(0.01)
        np.testing.assert_allclose(model.predict(ROWS), refs["v2"], atol=1e-5)
        assert (tmp_path / "cache" / "v2" / "model.json").exists()
        # a broken v3 on the server: reported, v2 keeps serving
        write_broken_variant(models / "v3", "shard-size")
        (models / "CURRENT").write_text("v3\n")
        deadline = time.monotonic() + 30
        while not errors:
            assert time.monotonic() < deadline
            assert model.predict_with_version(ROWS)[1] == "v2"
            time.sleep(0.01)
        assert errors == ["v3"]
        assert model.predict_with_version(ROWS)[1] == "v2"


def test_http_source_missing_version_reported(http_root: tuple[Path, str], tmp_path: Path) -> None:
    root, base = http_root
    (root / "models").mkdir()
    (root / "models" / "CURRENT").write_text("v7\n")
    errors: list[str] = []
    with HotSwapModel(HttpSource(base, cache_dir=tmp_path / "c"), backend=FAST, poll_interval=0.05,
                      on_error=lambda v, e: errors.append(v)) as model:
        deadline = time.monotonic() + 10
        while not errors:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        assert errors == ["v7"]
        with pytest.raises(ModelError, match="v7"):
            model.wait_ready(0.1)


@pytest.mark.parametrize("backend", BACKENDS)
def test_engine_adopt(backend: str) -> None:
    box: dict[str, object] = {}
    t = threading.Thread(target=lambda: box.setdefault("m", load(WINE_DIR, backend, warmup=False)))
    t.start()
    t.join()
    model = box["m"]
    assert hasattr(model, "engine")
    with pytest.raises(WrongThreadError):
        model.predict(ROWS)  # type: ignore[attr-defined]
    model.engine.adopt()  # type: ignore[attr-defined]
    np.testing.assert_allclose(model.predict(ROWS), numpy_wine_predict(WINE_DIR, ROWS), atol=1e-5)  # type: ignore[attr-defined]
    model.close()  # type: ignore[attr-defined]


@pytest.mark.parametrize("backend", BACKENDS)
def test_named_inputs_and_outputs_through_a_swap(backend: str, versions: dict[str, Path], tmp_path: Path) -> None:
    """run() with named inputs serves each version; a version whose inputs differ is refused."""
    from jsengine_ml.conformance.model_suite import golden_named, reference_models_dir

    feeds, want = golden_named("multi_io")
    source = reference_models_dir() / "multi_io"
    with HotSwapModel(backend=backend) as model:
        model.offer("a", source).result(120)
        got, version = model.run_with_version(feeds)
        assert version == "a" and set(got) == set(want)
        for name in want:
            np.testing.assert_allclose(got[name], want[name], atol=1e-5)
        second = model.offer("b", Path(shutil.copytree(source, tmp_path / "b")))
        second.result(120)
        assert model.run_with_version(feeds, [next(iter(want))])[1] == "b"
        serving = r"the serving line takes numeric \[10\] float32, tokens \[12\] int32"
        with pytest.raises(ModelError, match=r"version wine takes features \[13\] float32 .*" + serving):
            model.offer("wine", versions["v1"]).result(120)
        assert model.run_with_version(feeds)[1] == "b"


def test_a_bundle_without_a_declared_width_serves_after_its_smoke_rows_fix_the_width(tmp_path: Path) -> None:
    bundle = tmp_path / "sum.js"
    bundle.write_text("function predict(rows) { return rows.map(function (r) {"
                      " return [r.reduce(function (a, b) { return a + b; }, 0)]; }); }")
    with HotSwapModel(backend=FAST, smoke_rows=np.ones((2, 5), np.float32)) as model:
        model.offer("v1", bundle).result(60)
        np.testing.assert_allclose(model.predict(np.full((1, 5), 2, np.float32)), [[10]])
        assert model.metadata.inputs[0].shape == (None, 5)
