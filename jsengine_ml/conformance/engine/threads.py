"""The owner-thread rule and ThreadLocalEngine."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ...backends import get_backend, register_backend
from ...engine import Capabilities, Engine
from ...errors import (
    JSEngineMLError,
    WrongThreadError,
)
from ...threads import ThreadLocalEngine
from .fixtures import EngineFixtures, assert_usable, require


class ThreadTests(EngineFixtures):
    """The owner-thread rule and ThreadLocalEngine."""

    # ================================================================== threads
    @pytest.mark.parametrize("method", [
        "eval", "eval_file", "function", "call", "put_array", "get_array", "transform", "settle", "run_timers",
        "add_resource", "load_bundle", "installed_shims", "close",
    ])
    def test_every_public_method_refuses_other_threads(self, engine: Engine, tmp_path: Path, method: str) -> None:
        """QuickJS aborts the process if two threads touch one Context: the owner-thread check must
        come before any binding call, on every backend."""
        script = tmp_path / "s.js"
        script.write_text("1 + 1", encoding="utf-8")
        engine.eval("function ident(a, s) { return {data: a, shape: s}; }")
        calls: dict[str, Callable[[], Any]] = {
            "eval": lambda: engine.eval("1"),
            "eval_file": lambda: engine.eval_file(script),
            "function": lambda: engine.function("ident"),
            "call": lambda: engine.call("ident", 1),
            "put_array": lambda: engine.put_array("x", np.zeros(3, np.float32)),
            "get_array": lambda: engine.get_array("new Float32Array(2)"),
            "transform": lambda: engine.transform("ident", np.zeros(3, np.float32)),
            "settle": lambda: engine.settle("Promise.resolve(1)"),
            "run_timers": lambda: engine.run_timers(),
            "add_resource": lambda: engine.add_resource("a.bin", b"x"),
            "load_bundle": lambda: engine.load_bundle("var M = {predict: function () {}};"),
            "installed_shims": lambda: engine.installed_shims(),
            "close": lambda: engine.close(),
        }
        outcome: list[BaseException | None] = []

        def other() -> None:
            try:
                calls[method]()
                outcome.append(None)
            except BaseException as exc:
                outcome.append(exc)

        worker = threading.Thread(target=other, name="intruder")
        worker.start()
        worker.join(30)
        assert outcome and isinstance(outcome[0], WrongThreadError), outcome
        assert "intruder" in str(outcome[0])
        assert not engine.closed
        assert_usable(engine)

    @pytest.fixture
    def _registered_name(self, _available_class: type[Engine]) -> Iterator[str]:
        """A registry name for the class under test (registered for the test if it has none)."""
        from ... import backends

        name = _available_class.name
        try:
            registered = get_backend(name) is _available_class
        except JSEngineMLError:
            registered = False
        if registered:
            yield name
            return
        name = f"conformance-{_available_class.__module__}.{_available_class.__qualname__}"
        register_backend(name, _available_class)
        yield name
        backends._registered.pop(name, None)

    def test_main_thread_only_engines_refuse_other_threads_naming_isolation(
        self, _available_class: type[Engine], caps: Capabilities
    ) -> None:
        """A binding that runs JavaScript on the main thread only (caps.main_thread_only) refuses to
        create or adopt an engine elsewhere, saying isolation="process" is the way out."""
        require(caps, "main_thread_only", caps.main_thread_only, "engines of this backend may live on any thread")
        assert threading.current_thread() is threading.main_thread()
        engine = _available_class()
        outcome: list[BaseException | None] = []

        def other() -> None:
            for attempt in (_available_class, engine.adopt):
                try:
                    attempt()
                    outcome.append(None)
                except BaseException as exc:
                    outcome.append(exc)

        worker = threading.Thread(target=other, name="loader")
        worker.start()
        worker.join(30)
        try:
            assert len(outcome) == 2 and all(isinstance(e, WrongThreadError) for e in outcome), outcome
            assert all('isolation="process"' in str(e) and "loader" in str(e) for e in outcome)
            assert_usable(engine)  # the refused adopt() left it with its owner
        finally:
            engine.close()

    def test_thread_local_engine_gives_each_thread_its_own_engine(self, _registered_name: str,
                                                                   caps: Capabilities) -> None:
        require(caps, "main_thread_only", not caps.main_thread_only,
                "engines are created on the main thread only (see the main-thread-only case)")
        name = _registered_name
        pool = ThreadLocalEngine(name, setup=lambda e: e.eval("function scale(a, s, k) { var o = new Float32Array"
                                                              "(a.length); for (var i = 0; i < a.length; i++)"
                                                              " { o[i] = a[i] * k; } return {data: o, shape: s}; }"))
        barrier = threading.Barrier(4)
        results: dict[int, Any] = {}

        def work(k: int) -> None:
            try:
                engine = pool.get()
                barrier.wait(10)
                x = np.arange(300, dtype=np.float32).reshape(100, 3) + k
                for _ in range(20):
                    got = engine.transform("scale", x, k)
                    np.testing.assert_array_equal(got, x * k)
                results[k] = (id(engine), pool.get() is engine)
            except BaseException as exc:
                results[k] = exc
            finally:
                pool.close()

        threads = [threading.Thread(target=work, args=(k,), name=f"worker-{k}") for k in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        errors = [r for r in results.values() if isinstance(r, BaseException)]
        assert not errors, errors
        assert len(results) == 4
        assert all(same for _, same in results.values())
        assert pool.created == 4

