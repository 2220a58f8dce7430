"""What eval()/call() give back, strings both ways, and how JavaScript errors reach Python."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from ...engine import Engine
from ...errors import (
    InputError,
    JSEngineMLError,
    JSError,
    JSSyntaxError,
)
from .fixtures import IDENTITY, EngineFixtures, assert_usable

UNICODE_STRINGS = {
    "ascii": "hello, world",
    "latin1": "héllo wörld ñ ß",
    "bmp-cjk": "日本語のテキスト",
    "astral": "😀 𝔸𝔹 🀄 \U0010fffd",
    "combining": "e\u0301 a\u0308 \u0915\u094d\u0937",
    "nul-inside": "a\x00b\x00",
    "lone-e000-prefix": "\ue000 private use first",
    "e000-json-lookalike": "\ue000json:[1,2]",
    "e001-console-lookalike": "\ue001console:{}",
    "rtl-and-zwj": "\u202eabc \u200d 👩\u200d💻",
}


class ValuesAndErrorsTests(EngineFixtures):
    """What eval()/call() give back, strings both ways, and how JavaScript errors reach Python."""

    # ================================================================== errors
    def test_js_error_carries_name_message_and_stack(self, engine: Engine) -> None:
        with pytest.raises(JSError) as info:
            engine.eval("function inner() { null.x; }\nfunction outer() { inner(); }\nouter();", filename="app.js")
        err = info.value
        assert isinstance(err, JSEngineMLError) and not isinstance(err, JSSyntaxError)
        assert err.js_name == "TypeError"
        assert err.js_message and "null" in err.js_message
        assert "inner" in err.js_stack
        assert_usable(engine)

    @pytest.mark.parametrize("filename", ["my-model.js", "/srv/bundles/wine.bundle.js"])
    def test_js_error_stack_names_the_eval_filename(self, engine: Engine, filename: str) -> None:
        with pytest.raises(JSError) as info:
            engine.eval("var a = 1;\n\nthrow new RangeError('out of range');", filename=filename)
        assert info.value.js_name == "RangeError"
        assert info.value.js_message == "out of range"
        assert filename in info.value.js_stack
        with pytest.raises(JSError) as info:
            engine.eval("function f() { undefinedFunction(); }\nf();", filename=filename)
        assert info.value.js_name == "ReferenceError"
        assert filename in info.value.js_stack
        assert_usable(engine)

    def test_promise_jobs_queued_by_a_failing_call_run_at_the_next_crossing(self, engine: Engine) -> None:
        """A call that queues a promise job and then throws leaves the job pending; the next eval
        must still run it (Duktape once marked the jobs drained before the call ran)."""
        engine.eval("var ran = 0; function queueThenThrow() { Promise.resolve().then(function () { ran++; });"
                    " throw new Error('after queueing'); }")
        with pytest.raises(JSError):
            engine.call("queueThenThrow")
        engine.eval("void 0")
        assert engine.eval("ran") == 1

    def test_errors_from_called_functions_raise_js_error(self, engine: Engine) -> None:
        engine.eval("function bad(x) { throw new TypeError('bad ' + x); }")
        with pytest.raises(JSError) as info:
            engine.call("bad", 7)
        assert (info.value.js_name, info.value.js_message) == ("TypeError", "bad 7")
        with pytest.raises(JSError):
            engine.call("doesNotExist")
        assert_usable(engine)

    def test_syntax_error_carries_filename_and_line(self, engine: Engine) -> None:
        with pytest.raises(JSSyntaxError) as info:
            engine.eval("var ok = 1;\nvar also = 2;\nvar broken = ;\n", filename="broken.js")
        err = info.value
        assert err.js_name == "SyntaxError"
        assert err.filename == "broken.js"
        assert err.line == 3
        assert_usable(engine)

    @pytest.mark.parametrize("thrown", ["42", "'x'", "null", "{code: 7}"], ids=["number", "string", "null", "object"])
    def test_thrown_non_error_values_raise_js_error(self, engine: Engine, thrown: str) -> None:
        with pytest.raises(JSError) as info:
            engine.eval(f"throw {thrown};")
        assert type(info.value) is JSError
        assert_usable(engine)

    @pytest.mark.parametrize(("thrown", "shown"), [("42", "42"), ("'oops'", "oops")], ids=["number", "string"])
    def test_thrown_non_error_value_is_named_in_the_message(self, engine: Engine, thrown: str, shown: str) -> None:
        with pytest.raises(JSError) as info:
            engine.eval(f"throw {thrown};")
        assert shown in info.value.js_message

    def test_infinite_recursion_raises_js_error_not_a_crash(self, engine: Engine) -> None:
        """Stack exhaustion is a catchable JS error (RangeError; QuickJS names it InternalError)."""
        with pytest.raises(JSError) as info:
            engine.eval("function down(n) { return 1 + down(n + 1); } down(0);")
        assert info.value.js_name in ("RangeError", "InternalError")
        assert engine.eval("(function () { try { return down(0); } catch (e) { return 'caught'; } })()") == "caught"
        assert_usable(engine)

    def test_no_binding_exception_escapes(self, engine: Engine) -> None:
        """Whatever goes wrong, only jsengine-ml exceptions come out (bindings' are the __cause__)."""
        cases: list[Callable[[], Any]] = [
            lambda: engine.eval("throw new Error('x')"),
            lambda: engine.eval("}{"),
            lambda: engine.eval("throw 42"),
            lambda: engine.call("nope.nope"),
            lambda: engine.call("(function () { throw new Error('in call'); })"),
            lambda: engine.get_array("notDefinedAnywhere"),
            lambda: engine.get_array("'a string'"),
            lambda: engine.transform("(function () { throw new Error('t'); })", np.zeros(3, np.float32)),
            lambda: engine.settle("Promise.reject(1)"),
            lambda: engine.eval("setTimeout(function () { throw new Error('timer'); }, 0)") and engine.run_timers(),
            lambda: engine.eval(42),  # type: ignore[arg-type]
        ]
        for case in cases:
            with pytest.raises(JSEngineMLError):
                case()
            assert_usable(engine)

    @pytest.mark.parametrize("source", ["undefined", "void 0", "var declared = 1", "({}).missing", "1; undefined"])
    def test_an_undefined_completion_value_is_none(self, engine: Engine, source: str) -> None:
        """dukpy answers the JSON of its variables object ({}) for an undefined result: not a value."""
        assert engine.eval(source) is None


    # ================================================================== strings
    @pytest.mark.parametrize("text", list(UNICODE_STRINGS.values()), ids=list(UNICODE_STRINGS))
    def test_unicode_string_round_trips_through_eval(self, engine: Engine, text: str) -> None:
        """A script's string result comes back exactly, even when it looks like the tagged JSON the
        engine layer uses for objects ("\ue000json:...") or holds a NUL."""
        assert engine.eval(json.dumps(text, ensure_ascii=False)) == text
        assert engine.eval(json.dumps(text, ensure_ascii=True)) == text
        assert engine.eval(json.dumps([text], ensure_ascii=True)) == [text]
        assert engine.settle(f"Promise.resolve({json.dumps(text)})") == text

    @pytest.mark.parametrize("text", list(UNICODE_STRINGS.values()), ids=list(UNICODE_STRINGS))
    def test_unicode_string_round_trips_through_call(self, engine: Engine, text: str) -> None:
        assert engine.call("(function (s) { return s; })", text) == text
        assert engine.call("(function (s) { return s.length; })", text) == len(text.encode("utf-16-le")) // 2
        assert engine.call("(function (o) { return o; })", {"k": text, text: [text]}) == {"k": text, text: [text]}

    # ================================================================== call()
    def test_call_dotted_path_binds_this(self, engine: Engine) -> None:
        engine.eval("var model = {scale: 3, inner: {k: 5, f: function (x) { return x * this.k; }},"
                    " predict: function (x) { return x * this.scale; }};")
        assert engine.call("model.predict", 2) == 6
        assert engine.call("model.inner.f", 2) == 10
        assert engine.function("model.predict")(4) == 12

    def test_call_arguments_round_trip_as_json(self, engine: Engine) -> None:
        args = [1, -2.5, "ü😀", True, None, [1, [2, {"a": "b"}]], {"nested": {"x": [1.5e300, -0.0]}}]
        assert engine.call("(function () { return Array.prototype.slice.call(arguments); })", *args) == args
        assert engine.call("(function (a, b) { return typeof a + ',' + typeof b; })", 1) == "number,undefined"

    @pytest.mark.parametrize("bad", [object(), {1, 2}, b"bytes", float("nan"), float("inf"), np.zeros(2)],
                             ids=["object", "set", "bytes", "nan", "inf", "ndarray"])
    def test_call_non_json_arguments_raise_input_error(self, engine: Engine, bad: Any) -> None:
        engine.eval("function echo(x) { return x; }")
        with pytest.raises(InputError):
            engine.call("echo", bad)
        with pytest.raises(InputError):
            engine.transform(f"({IDENTITY})", np.zeros(2, np.float32), bad)
        assert_usable(engine)
