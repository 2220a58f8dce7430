"""The host-driven timer queue and settle(): promises, deadlines, async transforms."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pytest

from ...engine import Engine
from ...errors import (
    JSError,
    JSTimeoutError,
    ShimError,
)
from .fixtures import EngineFixtures, assert_usable


class TimerAndPromiseTests(EngineFixtures):
    """The host-driven timer queue and settle(): promises, deadlines, async transforms."""

    # ================================================================== timers
    def test_set_timeout_runs_by_delay_then_insertion_order(self, engine: Engine) -> None:
        """QuickJS and Duktape have no timers and mini-racer's fire on its own thread: the timers
        shim runs one host-driven queue, ordered by due time, then by insertion."""
        engine.eval(
            "var order = [];"
            "setTimeout(function () { order.push('c30'); }, 30);"
            "setTimeout(function () { order.push('a0'); }, 0);"
            "setTimeout(function () { order.push('b10'); }, 10);"
            "setTimeout(function () { order.push('a0-second'); }, 0);"
            "setTimeout(function (x, y) { order.push('args' + x + y); }, 10, 1, 2);"
        )
        deadline = time.monotonic() + 5
        while engine.run_timers() and time.monotonic() < deadline:
            time.sleep(0.005)
        assert engine.eval("order") == ["a0", "a0-second", "b10", "args12", "c30"]

    def test_set_interval_repeats_until_cleared(self, engine: Engine) -> None:
        """setInterval fires repeatedly (host pumps) and stops once clearInterval is called."""
        engine.eval(
            "var ticks = 0; var iv = setInterval(function () { ticks++; if (ticks === 3) { clearInterval(iv); } }, 1);"
        )
        deadline = time.monotonic() + 5
        while engine.run_timers() and time.monotonic() < deadline:
            time.sleep(0.003)
        assert engine.eval("ticks") == 3
        assert engine.run_timers() == 0

    def test_clear_timeout_cancels(self, engine: Engine) -> None:
        engine.eval(
            "var fired = [];"
            "var t1 = setTimeout(function () { fired.push(1); }, 0);"
            "setTimeout(function () { fired.push(2); }, 0);"
            "clearTimeout(t1);"
        )
        assert engine.run_timers() == 0
        assert engine.eval("fired") == [2]

    def test_set_immediate_runs_at_the_next_pump_and_can_be_cleared(self, engine: Engine) -> None:
        """setImmediate (used by some polyfills) runs with its arguments at the next pump."""
        engine.eval(
            "var seen = [];"
            "setImmediate(function (x) { seen.push('immediate' + x); }, 7);"
            "var dropped = setImmediate(function () { seen.push('cleared'); });"
            "clearImmediate(dropped);"
        )
        assert engine.eval("seen") == []
        assert engine.run_timers() == 0
        assert engine.eval("seen") == ["immediate7"]

    def test_timers_run_only_when_the_host_pumps(self, engine: Engine) -> None:
        """Nothing fires behind the host's back: eval/call do not run timers; run_timers/settle do."""
        engine.eval("var fired = 0; setTimeout(function () { fired++; }, 0);")
        time.sleep(0.05)
        assert engine.eval("fired") == 0
        assert engine.call("(function () { return fired; })") == 0
        assert engine.run_timers() == 0
        assert engine.eval("fired") == 1
        engine.eval("setTimeout(function () { fired++; }, 0);")
        assert engine.settle("1") == 1
        assert engine.eval("fired") == 2

    # ================================================================== promises
    def test_settle_returns_the_resolved_value(self, engine: Engine) -> None:
        """Duktape has no Promise (the promise shim provides one); settle() drives the jobs."""
        assert engine.settle("Promise.resolve({a: [1, 2]})") == {"a": [1, 2]}
        assert engine.settle("Promise.resolve(1).then(function (x) { return x + 1; })") == 2

    def test_settle_waits_for_a_set_timeout(self, engine: Engine) -> None:
        started = time.monotonic()
        value = engine.settle("new Promise(function (resolve) { setTimeout(function () { resolve('late'); }, 50); })")
        assert value == "late"
        assert 0.04 <= time.monotonic() - started < 5

    def test_settle_rejection_raises_js_error_with_name_and_message(self, engine: Engine) -> None:
        with pytest.raises(JSError) as info:
            engine.settle("Promise.reject(new TypeError('bad input shape'))")
        assert info.value.js_name == "TypeError"
        assert info.value.js_message == "bad input shape"
        assert_usable(engine)

    def test_settle_promise_that_can_never_settle_raises_shim_error_quickly(self, engine: Engine) -> None:
        started = time.monotonic()
        with pytest.raises(ShimError, match="never settle"):
            engine.settle("new Promise(function () {})", timeout=10)
        assert time.monotonic() - started < 1
        assert_usable(engine)

    def test_settle_deadline_raises_js_timeout_error(self, engine: Engine) -> None:
        started = time.monotonic()
        with pytest.raises(JSTimeoutError):
            engine.settle("new Promise(function (resolve) { setTimeout(resolve, 60000); })", timeout=0.2)
        assert 0.15 <= time.monotonic() - started < 2
        assert_usable(engine)

    @pytest.mark.parametrize(("expression", "expected"), [
        ("42", 42), ("'text'", "text"), ("[1, 2]", [1, 2]), ("null", None), ("undefined", None),
    ])
    def test_settle_non_promise_value_is_returned_as_is(self, engine: Engine, expression: str, expected: Any) -> None:
        assert engine.settle(expression) == expected

    def test_transform_with_an_async_function(self, engine: Engine) -> None:
        """transform() settles a promised result (tfjs model.predict -> data() is async)."""
        engine.eval(
            "function later(a, shape, k) { return new Promise(function (resolve) {"
            "  setTimeout(function () { var out = new Float32Array(a.length);"
            "    for (var i = 0; i < a.length; i++) { out[i] = a[i] * k; }"
            "    resolve({data: out, shape: shape}); }, 5); }); }"
        )
        x = np.arange(12, dtype=np.float32).reshape(4, 3)
        np.testing.assert_array_equal(engine.transform("later", x, 2), x * 2)

