"""Time and memory limits: enforced as Capabilities declare, or refused."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest

from ...engine import Capabilities
from ...errors import (
    CapabilityError,
    JSMemoryLimitError,
    JSTimeoutError,
)
from .fixtures import EngineFactory, EngineFixtures, MiB, assert_usable, require

#: A loop that spends its time allocating (short-lived arrays and strings), not in plain bytecode.
ALLOCATING_LOOP = ("(function () { var keep; for (;;) { keep = [];"
                   " for (var i = 0; i < 1000; i++) { keep.push('s' + i); } } })()")


class LimitTests(EngineFixtures):
    """Time and memory limits: enforced as Capabilities declare, or refused."""

    def test_time_limit_stops_an_infinite_loop(self, engine_factory: EngineFactory, caps: Capabilities) -> None:
        require(caps, "time_limit", caps.time_limit, "no time limit to stop the loop with")
        limited = engine_factory(time_limit=0.5)
        runs: list[Callable[[], object]] = [lambda: limited.eval("while (true) {}"),
                                            lambda: limited.call("(function () { for (;;) {} })"),
                                            lambda: limited.eval(ALLOCATING_LOOP)]
        for run in runs:
            started = time.monotonic()
            with pytest.raises(JSTimeoutError):
                run()
            assert time.monotonic() - started < 0.5 + 1.0
            assert_usable(limited)

    def test_time_limit_stops_a_loop_in_a_promise_job(self, engine_factory: EngineFactory, caps: Capabilities) -> None:
        """A job that never ends is stopped like a call (QuickJS turns it into a rejection first)."""
        require(caps, "time_limit", caps.time_limit, "no time limit to stop the loop with")
        limited = engine_factory(time_limit=0.5)
        started = time.monotonic()
        with pytest.raises(JSTimeoutError) as info:
            limited.settle("Promise.resolve().then(function () { for (;;) {} })", timeout=30)
        assert time.monotonic() - started < 0.5 + 1.0
        if limited.closed:  # an engine that cannot stop the job gives up on it, and says so
            assert "isolation" in str(info.value)
        else:
            assert_usable(limited)

    def test_time_limit_is_wall_clock_time(self, engine_factory: EngineFactory, caps: Capabilities) -> None:
        """A limit counts wall-clock time, not the CPU time the engine's thread got: with the other
        cores busy, a loop under time_limit=0.5 still stops within 0.5 s + 1 s."""
        require(caps, "time_limit", caps.time_limit, "no time limit to stop the loop with")
        limited = engine_factory(time_limit=0.5)
        stop = threading.Event()

        def burn() -> None:
            while not stop.is_set():
                sum(range(10_000))

        burners = [threading.Thread(target=burn, daemon=True) for _ in range(2)]
        for t in burners:
            t.start()
        try:
            started = time.monotonic()
            with pytest.raises(JSTimeoutError):
                limited.eval("for (;;) {}")
            assert time.monotonic() - started < 0.5 + 1.0
        finally:
            stop.set()
            for t in burners:
                t.join()

    def test_time_limit_is_accepted_iff_declared(self, engine_factory: EngineFactory, caps: Capabilities) -> None:
        """A backend enforces a time limit (``Capabilities.time_limit``) or refuses it with
        CapabilityError pointing to isolation: it never ignores one."""
        if caps.time_limit:
            assert_usable(engine_factory(time_limit=1.0))
        else:
            with pytest.raises(CapabilityError, match="isolation"):
                engine_factory(time_limit=1.0)

    def test_memory_limit_is_accepted_as_its_declared_scope(
        self, engine_factory: EngineFactory, caps: Capabilities
    ) -> None:
        """``Capabilities.memory_limit_scope`` says what a memory limit counts: none (refused, pointing
        to isolation), the JS heap only (refused unless the caller accepts that with
        heap_only_limit=True: ArrayBuffer stores escape it), or everything (accepted)."""
        scope = caps.memory_limit_scope
        assert scope in (None, "heap", "all", "process"), scope
        assert (caps.memory_limit is None) == (scope is None), (caps.memory_limit, scope)
        if scope is None:
            with pytest.raises(CapabilityError, match="isolation"):
                engine_factory(memory_limit=64 * MiB)
            return
        if scope == "heap":
            with pytest.raises(CapabilityError, match="heap_only_limit"):
                engine_factory(memory_limit=64 * MiB)
            assert_usable(engine_factory(memory_limit=64 * MiB, heap_only_limit=True))
        else:
            assert_usable(engine_factory(memory_limit=64 * MiB))

    def test_memory_limit_stops_a_js_heap_bomb(self, engine_factory: EngineFactory, caps: Capabilities) -> None:
        require(caps, "memory_limit_scope", caps.memory_limit_scope is not None, "no memory limit to stop it with")
        limited = engine_factory(memory_limit=64 * MiB, heap_only_limit=caps.memory_limit_scope == "heap")
        with pytest.raises(JSMemoryLimitError):
            limited.eval(
                "(function () { var a = [];"
                " for (var i = 0; i < 1e8; i++) { a.push({i: i, s: 'row ' + i, v: [i, i + 1]}); }"
                " return a.length; })()"
            )
        assert_usable(limited)
        assert limited.eval("(function () { var a = []; for (var i = 0; i < 1000; i++) { a.push({i: i}); }"
                            " return a.length; })()") == 1000

    def test_memory_limit_stops_a_typed_array_bomb(self, engine_factory: EngineFactory, caps: Capabilities) -> None:
        """Float64Arrays of 8 MiB each, every page written (untouched zero pages cost no memory), at
        most 512 MiB in all (an unenforced limit stays harmless)."""
        require(caps, "memory_limit_scope", caps.memory_limit_scope in ("all", "process"),
                "the memory limit does not count typed arrays")
        limited = engine_factory(memory_limit=64 * MiB)
        with pytest.raises(JSMemoryLimitError):
            limited.eval(
                "(function () { var keep = [];"
                " for (var i = 0; i < 64; i++) { var a = new Float64Array(1024 * 1024);"
                "   for (var j = 0; j < a.length; j += 512) { a[j] = 1; } keep.push(a); }"
                " return keep.length; })()"
            )
        assert_usable(limited)

