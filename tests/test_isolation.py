"""Isolation: engines in supervised worker processes (jsengine_ml.isolation)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

import jsengine_ml
from jsengine_ml.backends import create_engine, get_backend
from jsengine_ml.conformance.engine_suite import EngineConformance
from jsengine_ml.engine import Engine
from jsengine_ml.errors import BackendUnavailableError, CapabilityError, EngineCrashedError, JSTimeoutError
from jsengine_ml.isolation import ENV_VAR, IsolatedEngine, isolated_class
from jsengine_ml.isolation.supervisor import SPAWNER
from jsengine_ml.testing import WINE_DIR, numpy_wine_predict

BACKENDS = [b.name for b in jsengine_ml.available_backends() if b.available]
ROWS = np.load(WINE_DIR / "golden.npz")["x"].reshape(-1, 13)[:16]


class _Isolated(EngineConformance):
    """The whole engine suite on an isolated engine: same API, same results as in-process."""

    @pytest.fixture
    def engine_class(self) -> type[Engine]:
        try:
            return isolated_class(get_backend(self.backend))
        except BackendUnavailableError as exc:
            pytest.skip(str(exc))


class TestIsolatedV8Conformance(_Isolated):
    backend = "v8"


class TestIsolatedQuickJSConformance(_Isolated):
    backend = "quickjs"


class TestIsolatedDuktapeConformance(_Isolated):
    backend = "duktape"


# ---------------------------------------------------------------------- helpers
def _memfds() -> int:
    """Shared-memory segments this process holds (the transport's memfds)."""
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            count += "jsengine-ml" in os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            pass
    return count


def _children() -> dict[int, str]:
    """This process's child processes and their state letter (Z = zombie)."""
    out = {}
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == os.getpid():
            out[int(pid)] = fields[0]
    return out


def _gone(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


# ---------------------------------------------------------------------- capabilities and selection
@pytest.mark.parametrize("backend", BACKENDS)
def test_capabilities_say_what_is_enforced_in_process_and_what_only_isolated(backend: str) -> None:
    inner = get_backend(backend).capabilities()
    caps = isolated_class(get_backend(backend)).capabilities()
    assert caps.isolated and not inner.isolated
    assert caps.time_limit and caps.memory_limit_scope == "process"
    assert not caps.zero_copy  # compiled models take the transform() path
    assert (caps.backend, caps.engine, caps.engine_version) == (inner.backend, inner.engine, inner.engine_version)
    if not inner.time_limit:  # Duktape: refused in-process, enforced isolated
        with pytest.raises(CapabilityError, match="isolation"):
            create_engine(backend, time_limit=1.0)
    with create_engine(backend, isolation="process", time_limit=1.0, memory_limit=64 << 20) as engine:
        assert isinstance(engine, IsolatedEngine) and engine.name == backend
        with pytest.raises(CapabilityError):
            engine.map_buffer("new ArrayBuffer(8)")


def test_environment_variable_selects_isolation(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_VAR, "process")
    with create_engine("quickjs") as engine:
        assert isinstance(engine, IsolatedEngine) and engine.pid != os.getpid()
    with create_engine("quickjs", isolation="none") as engine:
        assert not isinstance(engine, IsolatedEngine)
    monkeypatch.setenv(ENV_VAR, "thread")
    with pytest.raises(ValueError, match=ENV_VAR):
        create_engine("quickjs")


# ---------------------------------------------------------------------- failures and restarts
# A native fault is simulated with SIGBUS, not SIGSEGV: SpiderMonkey's WebAssembly trap handler
# takes SIGSEGV and SIGILL, and one sent by kill() (not a fault) leaves the worker running.
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGBUS, signal.SIGABRT])
@pytest.mark.parametrize("backend", BACKENDS)
def test_a_crash_is_one_exception_then_a_fresh_worker_replays_the_setup(backend: str, sig: int, tmp_path) -> None:
    resource = tmp_path / "r.bin"
    resource.write_bytes(b"\x01\x02\x03")
    with create_engine(backend, isolation="process") as engine:
        engine.eval("var state = 41; function twice(a, s) { var o = new Float32Array(a.length);"
                    " for (var i = 0; i < a.length; i++) { o[i] = 2 * a[i]; } return {data: o, shape: s}; }")
        engine.put_array("weights", np.arange(6, dtype=np.float32))
        engine.add_resource("r.bin", resource)
        first = engine.pid
        os.kill(first, sig)
        with pytest.raises(EngineCrashedError) as info:
            engine.eval("state")
        assert info.value.signal == sig and str(first) in str(info.value)
        assert _gone(first)
        # the next call runs on a fresh worker, with everything set up before replayed
        assert engine.eval("state + 1") == 42
        assert engine.pid != first and engine.restarts == 1
        np.testing.assert_array_equal(engine.get_array("weights"), np.arange(6, dtype=np.float32))
        assert engine.settle("fetch('r.bin').then(function (r) { return r.arrayBuffer(); })"
                             ".then(function (b) { return b.byteLength; })") == 3
        np.testing.assert_array_equal(engine.transform("twice", np.ones((2, 3), np.float32)), np.full((2, 3), 2))


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_model_keeps_predicting_right_across_worker_kills(backend: str) -> None:
    expected = numpy_wine_predict(WINE_DIR, ROWS)
    with jsengine_ml.load(WINE_DIR, backend, isolation="process", time_limit=5.0) as model:
        assert model.runtime == "compiled"
        np.testing.assert_allclose(model.predict(ROWS), expected, atol=1e-5)
        for kills in (1, 2):
            os.kill(model.engine.pid, signal.SIGKILL)
            with pytest.raises(EngineCrashedError):
                model.predict(ROWS)
            np.testing.assert_allclose(model.predict(ROWS), expected, atol=1e-5)
            assert model.engine.restarts == kills


def test_consecutive_failures_back_off_and_max_restarts_stops_the_loop() -> None:
    with create_engine("quickjs", isolation="process", max_restarts=2) as engine:
        engine.eval("var x = 1")
        times = []
        for _ in range(3):
            os.kill(engine.pid, signal.SIGKILL)
            with pytest.raises(EngineCrashedError):
                engine.eval("x")
            started = time.monotonic()
            try:
                engine.eval("x")
            except EngineCrashedError as exc:
                assert "max_restarts=2" in str(exc)
                break
            times.append(time.monotonic() - started)
        assert engine.restarts == 2
        with pytest.raises(EngineCrashedError, match="max_restarts"):
            engine.eval("x")


@pytest.mark.parametrize("backend", BACKENDS)
def test_time_limit_on_a_promise_job_kills_the_worker(backend: str) -> None:
    """The limit bounds each crossing: a loop in a promise job is stopped like one in a call."""
    with create_engine(backend, isolation="process", time_limit=0.5) as engine:
        started = time.monotonic()
        with pytest.raises(JSTimeoutError):
            engine.settle("Promise.resolve().then(function () { for (;;) {} })", timeout=30)
        assert time.monotonic() - started < 0.5 + 1.0
        assert engine.eval("1 + 1") == 2


# ---------------------------------------------------------------------- cleanup
def test_no_zombies_and_no_leaked_shared_memory() -> None:
    SPAWNER.close()
    before_fds, before_shm = _memfds(), sorted(os.listdir("/dev/shm"))
    engines = [create_engine(b, isolation="process") for b in BACKENDS]
    pids = [e.pid for e in engines]
    for e in engines:
        assert e.eval("6 * 7") == 42
    os.kill(pids[0], signal.SIGKILL)
    with pytest.raises(EngineCrashedError):
        engines[0].eval("1")
    engines[0].eval("1")  # a fresh worker
    pids.append(engines[0].pid)
    assert _memfds() > before_fds
    for e in engines:
        e.close()
    SPAWNER.close()  # spares and reused workers too
    assert _memfds() == before_fds
    assert sorted(os.listdir("/dev/shm")) == before_shm
    assert all(_gone(pid) for pid in pids)
    assert not [pid for pid, state in _children().items() if state == "Z"]


EXIT_SCRIPT = textwrap.dedent("""
    import json, sys, time
    import numpy as np
    import jsengine_ml
    from jsengine_ml.hotswap import HotSwapModel
    from jsengine_ml.microbatch import MicroBatcher
    from jsengine_ml.testing import WINE_DIR

    backend, isolation, out = sys.argv[1], sys.argv[2], sys.argv[3]
    x = np.zeros((64, 13), np.float32)
    model = jsengine_ml.load(WINE_DIR, backend, isolation=isolation)
    for _ in range(200):
        model.predict(x)
    engine = jsengine_ml.create_engine(backend, isolation=isolation)
    engine.eval("function f(n) { var s = 0; for (var i = 0; i < n; i++) { s += i; } return s; }")
    for _ in range(25):
        engine.call("f", 1e6)
    # a main-thread-only backend's loader and batcher threads get isolated engines (isolation unset)
    on_threads = None if jsengine_ml.get_backend(backend).capabilities().main_thread_only else isolation
    swapper = HotSwapModel(backend=backend, isolation=on_threads)
    swapper.offer("v1", str(WINE_DIR)).result(120)
    swapper.predict(x)
    batcher = MicroBatcher(path=str(WINE_DIR), backend=backend, isolation=on_threads)
    batcher.predict_one(x[0])
    pids = [e.pid for e in (model.engine, engine) if hasattr(e, "pid")]
    json.dump({"pids": pids, "at": time.time()}, open(out, "w"))
    # nothing is closed: the interpreter exit must close it all
""")


@pytest.mark.parametrize("isolation", ["none", "process"])
@pytest.mark.parametrize("backend", BACKENDS)
def test_a_process_that_leaves_everything_open_exits_promptly(backend: str, isolation: str, tmp_path) -> None:
    out = tmp_path / "out.json"
    proc = subprocess.run([sys.executable, "-c", EXIT_SCRIPT, backend, isolation, str(out)], timeout=120,
                          capture_output=True, text=True)
    ended = time.time()
    assert proc.returncode == 0, proc.stderr[-3000:]
    info = json.loads(out.read_text())
    assert ended - info["at"] < 15, f"exit took {ended - info['at']:.1f} s"
    assert len(info["pids"]) == (2 if isolation == "process" else 0)
    assert all(_gone(pid) for pid in info["pids"]), "a worker outlived its parent"


def test_the_supervisor_never_loads_the_engine_binding() -> None:
    """In PyFlink's thread mode the supervisor is the JVM: V8 started there is what crashed it."""
    code = textwrap.dedent("""
        import numpy as np, jsengine_ml
        from jsengine_ml.testing import WINE_DIR
        with jsengine_ml.load(WINE_DIR, "v8", isolation="process", time_limit=5.0) as m:
            m.predict(np.zeros((2, 13), np.float32))
            print(m.engine.capabilities().engine, "mini_racer" in open("/proc/self/maps").read())
    """)
    if "v8" not in BACKENDS:
        pytest.skip("v8 is not installed")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["V8", "False"]


def test_hot_swap_with_isolation_a_version_that_hangs_while_loading_is_a_failed_version(tmp_path) -> None:
    from jsengine_ml.conformance.hostile_suite import CASES_BY_NAME, GOOD_BUNDLE, ROWS, good_output
    from jsengine_ml.hotswap import HotSwapModel

    good, hanging = tmp_path / "good.js", tmp_path / "hangs.js"
    good.write_text(GOOD_BUNDLE, encoding="utf-8")
    hanging.write_text(CASES_BY_NAME["loops-while-loading"].source, encoding="utf-8")
    model = HotSwapModel(backend="quickjs", isolation="process", load_options={"time_limit": 1.0})
    try:
        model.offer("v1", good).result(60)
        np.testing.assert_allclose(model.predict(ROWS), good_output(ROWS))
        started = time.monotonic()
        with pytest.raises(JSTimeoutError):
            model.offer("v2", hanging).result(60)
        assert time.monotonic() - started < 1.0 + 1.0 + 1.0  # the limit + 1 s, + a worker start
        np.testing.assert_allclose(model.predict(ROWS), good_output(ROWS))
        assert model.version == "v1" and [f.version for f in model.failures] == ["v2"]
    finally:
        model.close()
