"""The engine conformance suite: one pytest class every backend (ours or a third party's) inherits.

Usage, in the backend's own test file::

    from jsengine_ml.conformance import EngineConformance

    class TestMyEngine(EngineConformance):
        backend = "myengine"            # registry name (entry point or register_backend)

or, without registering the backend, override the ``engine_class`` fixture::

    class TestMyEngine(EngineConformance):
        @pytest.fixture
        def engine_class(self):
            return MyEngine

A backend declares what it cannot do in ``Engine.expected_failures`` (fnmatch pattern on the test
name -> reason); matching cases run as strict xfails, so nothing engine-specific lives here. Every
JavaScript snippet below is ES5 unless a case is about newer syntax: the suite must run on Duktape.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from fnmatch import fnmatch
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest

from ..backends import get_backend, register_backend
from ..engine import Capabilities, Engine
from ..errors import (
    BackendUnavailableError,
    CapabilityError,
    EngineClosedError,
    InputError,
    JSEngineMLError,
    JSError,
    JSMemoryLimitError,
    JSSyntaxError,
    JSTimeoutError,
    ShimError,
    WrongThreadError,
)
from ..threads import ThreadLocalEngine

BUNDLES = Path(__file__).resolve().parent / "bundles"
MANIFEST: dict[str, Any] = json.loads((BUNDLES / "manifest.json").read_text(encoding="utf-8"))
EXAMPLE_IN = MANIFEST["example"]["input"]
EXAMPLE_OUT = MANIFEST["example"]["output"]
MiB = 1024 * 1024

#: float32 bit patterns that must survive every transfer unchanged.
SPECIAL_FLOAT32_BITS = {
    "+0": 0x00000000,
    "-0": 0x80000000,
    "+inf": 0x7F800000,
    "-inf": 0xFF800000,
    "smallest subnormal": 0x00000001,
    "largest subnormal": 0x007FFFFF,
    "smallest normal": 0x00800000,
    "float32 max": 0x7F7FFFFF,
    "float32 min (lowest)": 0xFF7FFFFF,
    "one": 0x3F800000,
    "minus one third": 0xBEAAAAAB,
}
#: NaNs: quiet, quiet with payload, signalling, negative quiet, signalling with all payload bits.
#: Measured on v8, quickjs and duktape: payloads and the sign were preserved bit for bit through
#: put_array/get_array and transform(identity) (the data path copies bytes, never numbers); the
#: suite only requires isnan, since IEEE 754 lets a number round trip canonicalize a NaN.
NAN_BITS = [0x7FC00000, 0x7FC00001, 0x7F800001, 0xFFC00000, 0x7FBFFFFF]

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

#: One syntax marker per ECMAScript edition (parsed, not run, with new Function).
ES_SYNTAX = {
    2015: "var f = (x) => x;",
    2016: "var p = 2 ** 3;",
    2017: "var f = async function () { await 1; };",
    2018: "var o = {...{a: 1}};",
    2019: "try { } catch { }",
    2020: "var v = null?.x;",
    2021: "var q; q ??= 1;",
    2022: "var C = class { #x = 1; static { } };",
    2024: "var r = /[\\p{L}--[a-z]]/v;",
}

#: Fingerprints of known engines, true only on that engine.
ENGINE_FINGERPRINTS = {
    "Duktape": "typeof Duktape === 'object' && typeof Duktape.version === 'number'",
    "V8": "typeof Error.captureStackTrace === 'function' && typeof WebAssembly === 'object'",
    "QuickJS": "typeof Duktape === 'undefined' && /^function push\\(\\) \\{\\n    \\[native code\\]\\n\\}$/"
    ".test(String([].push)) && typeof new Error().columnNumber !== 'number'",
    # SpiderMonkey's errors carry fileName/lineNumber/columnNumber and its stack frames read name@file:line:col.
    "SpiderMonkey": "typeof new Error().columnNumber === 'number' && typeof new Error().fileName === 'string'"
    " && typeof WebAssembly === 'object'",
}


def _bits(array: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(array, dtype=np.float32).view(np.uint32)


def _special_float32() -> np.ndarray:
    rng = np.random.default_rng(1234)
    random_bits = rng.integers(0, 2**32, size=200, dtype=np.uint64).astype(np.uint32)
    random_values = random_bits.view(np.float32)
    random_values = random_values[~np.isnan(random_values)]
    bits = np.array(list(SPECIAL_FLOAT32_BITS.values()) + NAN_BITS, dtype=np.uint32)
    return np.concatenate([bits.view(np.float32), random_values])


def _assert_float32_identical(got: np.ndarray, want: np.ndarray) -> None:
    assert got.dtype == np.float32, got.dtype
    assert got.shape == want.shape, (got.shape, want.shape)
    nan = np.isnan(want)
    assert np.array_equal(np.isnan(got), nan), "NaN positions differ"
    differ = np.nonzero(_bits(got)[~nan] != _bits(want)[~nan])[0]
    assert differ.size == 0, (
        f"{differ.size} values changed bits, e.g. {want[~nan][differ[:5]]} -> {got[~nan][differ[:5]]}"
    )


def _assert_usable(engine: Engine) -> None:
    assert engine.eval("[1, 2].concat([3]).length") == 3


IDENTITY = "function (a, shape) { return {data: a, shape: shape}; }"
#: A loop that spends its time allocating (short-lived arrays and strings), not in plain bytecode.
ALLOCATING_LOOP = ("(function () { var keep; for (;;) { keep = [];"
                   " for (var i = 0; i < 1000; i++) { keep.push('s' + i); } } })()")


class EngineConformance:
    """Behaviour every jsengine-ml backend must show. Subclass it and set ``backend``."""

    #: Registry name of the backend under test (or override the ``engine_class`` fixture).
    backend: ClassVar[str | None] = None

    # ================================================================== fixtures
    @pytest.fixture
    def engine_class(self) -> type[Engine]:
        """The Engine subclass under test; skipped with the backend's reason when unavailable."""
        if not self.backend:
            pytest.fail(f"{type(self).__name__}: set `backend = '<name>'` or override the engine_class fixture")
        try:
            return get_backend(self.backend)
        except BackendUnavailableError as exc:
            pytest.skip(f"backend {self.backend!r} unavailable: {exc}")

    @pytest.fixture
    def _available_class(self, engine_class: type[Engine]) -> type[Engine]:
        try:
            engine_class.check_available()
        except BackendUnavailableError as exc:
            pytest.skip(f"{engine_class.__name__} unavailable: {exc}")
        return engine_class

    @pytest.fixture(autouse=True)
    def _expected_failures(self, request: pytest.FixtureRequest, _available_class: type[Engine]) -> None:
        """Turn the backend's declared ``expected_failures`` into strict xfails."""
        names = {request.node.name, getattr(request.node, "originalname", request.node.name)}
        for pattern, reason in getattr(_available_class, "expected_failures", {}).items():
            if any(fnmatch(n, pattern) for n in names):
                request.applymarker(pytest.mark.xfail(reason=f"{_available_class.name}: {reason}", strict=True))
                return

    @pytest.fixture
    def engine_factory(self, _available_class: type[Engine]) -> Iterator[Callable[..., Engine]]:
        """Create engines of the class under test (kwargs as for Engine); all closed at teardown."""
        created: list[Engine] = []

        def make(**options: Any) -> Engine:
            engine = _available_class(**options)
            created.append(engine)
            return engine

        yield make
        for engine in created:
            try:
                engine.close()
            except WrongThreadError:  # pragma: no cover - a case left an engine on another thread
                pass

    @pytest.fixture
    def engine(self, engine_factory: Callable[..., Engine]) -> Engine:
        """A default engine (no limits)."""
        return engine_factory()

    @pytest.fixture
    def caps(self, _available_class: type[Engine]) -> Capabilities:
        return _available_class.capabilities()

    # ================================================================== global object and shims
    def test_global_object_is_reachable_under_every_common_name(self, engine):
        """globalThis/global/window/self are one object. V8 (mini-racer), QuickJS and Duktape lack
        global/window/self; bundles and tfjs look the global object up under those names."""
        assert engine.eval(
            "var g = Function('return this')();"
            "[globalThis === g, global === g, window === g, self === g]"
        ) == [True, True, True, True]
        installed = engine.installed_shims()
        assert installed and all(isinstance(name, str) for name in installed)
        for name in installed:  # every stand-in the engine lacked is now defined
            assert engine.eval(f"typeof {name} !== 'undefined'"), name

    def test_document_stand_in_is_present_for_sealed_tfjs_bundles(self, engine):
        """No embedded engine has a DOM. A sealed webpack bundle of tfjs registers its browser
        platform only when window.document is non-null, so the global shim provides a stand-in."""
        assert engine.eval("typeof document === 'object' && document !== null && window.document === document")
        assert engine.eval("document.createElement('canvas').getContext('webgl')") is None
        if "document" in engine.installed_shims():
            assert engine.eval("document.jsengineMlStandIn") is True

    @pytest.mark.parametrize("name", ["TextEncoder", "TextDecoder", "atob", "btoa", "performance", "Promise"])
    def test_installed_shims_lists_exactly_what_the_engine_lacked(self, engine, name):
        """installed_shims() names the stand-ins installed because the engine lacked them: V8 and
        QuickJS lack TextEncoder/TextDecoder/atob/btoa/performance; Duktape lacks atob/btoa and
        Promise. A listed name is our shim (not native code); an unlisted one is the engine's own."""
        installed = engine.installed_shims()
        assert engine.eval(f"typeof {name} !== 'undefined'"), f"{name} is missing and was not shimmed"
        if name == "performance":
            native = engine.eval("String(performance.now).indexOf('[native code]') >= 0")
        else:
            native = engine.eval(f"String({name}).indexOf('[native code]') >= 0")
        assert (name in installed) == (not native), (name, installed)

    # ================================================================== console
    @pytest.mark.parametrize(("method", "level"), [
        ("log", logging.INFO), ("info", logging.INFO), ("warn", logging.WARNING), ("error", logging.ERROR),
    ])
    def test_console_is_routed_to_python_logging(self, engine, caplog, method, level):
        """QuickJS has no console and the consoles of V8 (mini-racer) and dukpy go nowhere useful:
        the global shim routes console.* to the "jsengine_ml.console" logger."""
        caplog.set_level(logging.DEBUG, logger="jsengine_ml.console")
        engine.eval(f"console.{method}('hello from', '{method}', 42)")
        records = [r for r in caplog.records if r.name == "jsengine_ml.console"]
        assert [(r.levelno, r.getMessage()) for r in records] == [(level, f"hello from {method} 42")]

    def test_console_formats_objects_as_json(self, engine, caplog):
        """Objects and arrays are logged as JSON, not as "[object Object]"."""
        caplog.set_level(logging.DEBUG, logger="jsengine_ml.console")
        engine.call("(function () { console.log('obj', {a: 1, b: [1, 2, 'x']}, [3, 4], null); })")
        records = [r.getMessage() for r in caplog.records if r.name == "jsengine_ml.console"]
        assert records == ['obj {"a":1,"b":[1,2,"x"]} [3,4] null']

    # ================================================================== timers
    def test_set_timeout_runs_by_delay_then_insertion_order(self, engine):
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

    def test_set_interval_repeats_until_cleared(self, engine):
        """setInterval fires repeatedly (host pumps) and stops once clearInterval is called."""
        engine.eval(
            "var ticks = 0; var iv = setInterval(function () { ticks++; if (ticks === 3) { clearInterval(iv); } }, 1);"
        )
        deadline = time.monotonic() + 5
        while engine.run_timers() and time.monotonic() < deadline:
            time.sleep(0.003)
        assert engine.eval("ticks") == 3
        assert engine.run_timers() == 0

    def test_clear_timeout_cancels(self, engine):
        engine.eval(
            "var fired = [];"
            "var t1 = setTimeout(function () { fired.push(1); }, 0);"
            "setTimeout(function () { fired.push(2); }, 0);"
            "clearTimeout(t1);"
        )
        assert engine.run_timers() == 0
        assert engine.eval("fired") == [2]

    def test_set_immediate_runs_at_the_next_pump_and_can_be_cleared(self, engine):
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

    def test_timers_run_only_when_the_host_pumps(self, engine):
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
    def test_settle_returns_the_resolved_value(self, engine):
        """Duktape has no Promise (the promise shim provides one); settle() drives the jobs."""
        assert engine.settle("Promise.resolve({a: [1, 2]})") == {"a": [1, 2]}
        assert engine.settle("Promise.resolve(1).then(function (x) { return x + 1; })") == 2

    def test_settle_waits_for_a_set_timeout(self, engine):
        started = time.monotonic()
        value = engine.settle("new Promise(function (resolve) { setTimeout(function () { resolve('late'); }, 50); })")
        assert value == "late"
        assert 0.04 <= time.monotonic() - started < 5

    def test_settle_rejection_raises_js_error_with_name_and_message(self, engine):
        with pytest.raises(JSError) as info:
            engine.settle("Promise.reject(new TypeError('bad input shape'))")
        assert info.value.js_name == "TypeError"
        assert info.value.js_message == "bad input shape"
        _assert_usable(engine)

    def test_settle_promise_that_can_never_settle_raises_shim_error_quickly(self, engine):
        started = time.monotonic()
        with pytest.raises(ShimError, match="never settle"):
            engine.settle("new Promise(function () {})", timeout=10)
        assert time.monotonic() - started < 1
        _assert_usable(engine)

    def test_settle_deadline_raises_js_timeout_error(self, engine):
        started = time.monotonic()
        with pytest.raises(JSTimeoutError):
            engine.settle("new Promise(function (resolve) { setTimeout(resolve, 60000); })", timeout=0.2)
        assert 0.15 <= time.monotonic() - started < 2
        _assert_usable(engine)

    @pytest.mark.parametrize("source", ["undefined", "void 0", "var declared = 1", "({}).missing", "1; undefined"])
    def test_an_undefined_completion_value_is_none(self, engine, source):
        """dukpy answers the JSON of its variables object ({}) for an undefined result: not a value."""
        assert engine.eval(source) is None

    @pytest.mark.parametrize(("expression", "expected"), [
        ("42", 42), ("'text'", "text"), ("[1, 2]", [1, 2]), ("null", None), ("undefined", None),
    ])
    def test_settle_non_promise_value_is_returned_as_is(self, engine, expression, expected):
        assert engine.settle(expression) == expected

    def test_transform_with_an_async_function(self, engine):
        """transform() settles a promised result (tfjs model.predict -> data() is async)."""
        engine.eval(
            "function later(a, shape, k) { return new Promise(function (resolve) {"
            "  setTimeout(function () { var out = new Float32Array(a.length);"
            "    for (var i = 0; i < a.length; i++) { out[i] = a[i] * k; }"
            "    resolve({data: out, shape: shape}); }, 5); }); }"
        )
        x = np.arange(12, dtype=np.float32).reshape(4, 3)
        np.testing.assert_array_equal(engine.transform("later", x, 2), x * 2)

    # ================================================================== encoding
    def test_text_encoder_decoder_round_trip_non_ascii(self, engine):
        """V8 (mini-racer) and QuickJS lack TextEncoder/TextDecoder; tfjs needs them (Duktape has
        its own). UTF-8 bytes must match Python's, astral characters included."""
        text = "añ€😀𝔸 日本 \U0010ffff"
        encoded = engine.call(
            "(function (s) { return Array.prototype.slice.call(new TextEncoder().encode(s)); })", text
        )
        assert bytes(encoded) == text.encode("utf-8")
        round_trip = "(function (s) { return new TextDecoder().decode(new TextEncoder().encode(s)); })"
        assert engine.call(round_trip, text) == text
        assert engine.call(
            "(function (b) { return new TextDecoder('utf-8').decode(new Uint8Array(b)); })", list(text.encode("utf-8"))
        ) == text

    def test_atob_btoa(self, engine):
        """None of the engines has atob/btoa (tfjs uses them for base64 weights): shimmed."""
        import base64

        raw = bytes(range(256)).decode("latin-1")
        encoded = engine.call("(function (s) { return btoa(s); })", raw)
        assert encoded == base64.b64encode(bytes(range(256))).decode("ascii")
        assert engine.call("(function (s) { return atob(s); })", encoded) == raw
        assert engine.eval("atob(btoa('ab')) + atob(btoa('abc')) + btoa('')") == "ababc"

    # ================================================================== fetch-less resources
    def test_fetch_serves_registered_bytes_as_array_buffer_json_and_text(self, engine):
        """No engine has fetch and a sandboxed model must not reach the network: the fetch shim
        serves resources registered from Python (tfjs loads model.json and shards this way)."""
        engine.add_resource("models/wine/model.json", json.dumps({"format": "layers-model", "ü": 1}).encode())
        engine.add_resource("models/wine/group1-shard1of1.bin", bytes([0, 1, 254, 255]))
        assert engine.settle("fetch('models/wine/model.json').then(function (r) { return r.json(); })") == {
            "format": "layers-model", "ü": 1,
        }
        assert engine.settle("fetch('models/wine/model.json').then(function (r) { return r.text(); })") == (
            '{"format": "layers-model", "\\u00fc": 1}'
        )
        assert engine.settle(
            "fetch('models/wine/group1-shard1of1.bin').then(function (r) { return r.arrayBuffer(); })"
            ".then(function (b) { return Array.prototype.slice.call(new Uint8Array(b)); })"
        ) == [0, 1, 254, 255]
        assert engine.settle("fetch('models/wine/model.json').then(function (r) { return [r.ok, r.status]; })") == [
            True, 200,
        ]

    def test_fetch_serves_a_registered_local_file(self, engine, tmp_path):
        path = tmp_path / "weights.bin"
        payload = np.arange(16, dtype=np.float32)
        path.write_bytes(payload.tobytes())
        engine.add_resource("weights.bin", path)
        got = engine.settle(
            "fetch('weights.bin').then(function (r) { return r.arrayBuffer(); })"
            ".then(function (b) { return Array.prototype.slice.call(new Float32Array(b)); })"
        )
        assert got == payload.tolist()

    @pytest.mark.parametrize(("registered", "requested"), [
        ("models/m/model.json", "models/m/model.json"),
        ("models/m/model.json", "./models/m/model.json"),
        ("./models/m/model.json", "models/m/model.json"),
        ("models/m/model.json", "models/m/model.json?v=3#frag"),
        ("model.json", "https://cdn.example.com/models/m/model.json?x=1"),
        ("model.json", "/srv/models/model.json"),
    ], ids=["exact", "dot-slash-request", "dot-slash-registered", "query-string", "bare-name-url", "bare-name-path"])
    def test_fetch_matches_url_variants(self, engine, registered, requested):
        engine.add_resource(registered, b'{"ok": true}')
        got = engine.settle(f"fetch({json.dumps(requested)}).then(function (r) {{ return r.json(); }})")
        assert got == {"ok": True}

    @pytest.mark.parametrize("url", ["http://example.com/model.json", "/tmp/not-registered/model.json"])
    def test_fetch_unregistered_url_rejects_naming_it(self, engine, url):
        engine.add_resource("other.json", b"{}")
        with pytest.raises(JSError) as info:
            engine.settle(f"fetch({json.dumps(url)})")
        assert info.value.js_name == "TypeError"
        assert url in info.value.js_message
        assert "network is not available" in info.value.js_message
        assert engine.settle("fetch('other.json').then(function (r) { return r.json(); })") == {}
        _assert_usable(engine)

    # ================================================================== webpack export discovery
    @pytest.mark.parametrize("entry", MANIFEST["bundles"], ids=[e["file"] for e in MANIFEST["bundles"]])
    def test_webpack_bundle_entry_is_found(self, engine, entry):
        """Every webpack 5 output.library.type (and a hand-written bundle) exposes its entry."""
        source = (BUNDLES / entry["file"]).read_text(encoding="utf-8")
        predict = engine.load_bundle(source, filename=entry["file"])
        assert engine.entry_path == entry["expected_path"]
        assert predict(EXAMPLE_IN) == EXAMPLE_OUT

    @pytest.mark.parametrize(
        "entry", [e for e in MANIFEST["bundles"] if e["name"]],
        ids=[e["file"] for e in MANIFEST["bundles"] if e["name"]],
    )
    def test_webpack_bundle_with_library_name_hint(self, engine, entry):
        source = (BUNDLES / entry["file"]).read_text(encoding="utf-8")
        predict = engine.load_bundle(source, filename=entry["file"], name=entry["name"])
        assert engine.entry_path == entry["expected_path"]
        assert predict(EXAMPLE_IN) == EXAMPLE_OUT

    @pytest.mark.parametrize("entry", MANIFEST["negative"], ids=[e["file"] for e in MANIFEST["negative"]])
    def test_bundle_exporting_nothing_raises_shim_error_listing_where_it_looked(self, engine, entry):
        source = (BUNDLES / entry["file"]).read_text(encoding="utf-8")
        with pytest.raises(ShimError) as info:
            engine.load_bundle(source, filename=entry["file"])
        message = str(info.value)
        assert entry["file"] in message
        assert "module.exports" in message
        assert "globals new since the bundle" in message
        assert engine.eval("typeof __jsml_entry") == "undefined"
        _assert_usable(engine)

    def test_failed_discovery_lists_the_new_globals(self, engine):
        with pytest.raises(ShimError) as info:
            engine.load_bundle("var Helper = {score: function () { return 1; }}; var n = 3;", filename="helper.js")
        assert "globals new since the bundle: Helper (object with keys score), n (number)" in str(info.value)

    def test_explicit_function_and_dotted_name_hints(self, engine):
        scorer = engine.load_bundle(
            "var Scorer = {k: 10, score: function (rows) { return rows.length * this.k; }};", function="score"
        )
        assert engine.entry_path == "Scorer.score"
        assert scorer([[1], [2], [3]]) == 30
        wine = engine.load_bundle(
            "self.Models = {Wine: {predict: function (rows) { return rows.length; }}};", name="Models.Wine"
        )
        assert engine.entry_path == "Models.Wine.predict"
        assert wine([[1], [2]]) == 2

    def test_module_exports_function_itself_is_the_entry(self, engine):
        entry = engine.load_bundle("module.exports = function (rows) { return rows.length; };")
        assert engine.entry_path == "module.exports"
        assert entry([[1], [2]]) == 2

    def test_webpack_chunk_and_shim_globals_are_ignored(self, engine):
        with pytest.raises(ShimError) as info:
            engine.load_bundle(
                "self.webpackChunkwine_model = {predict: function () { return 'chunk'; }};"
                "var __jsml_decoy = {predict: function () { return 'shim'; }};"
            )
        assert "webpackChunk" not in str(info.value)
        assert "__jsml_decoy" not in str(info.value)

    def test_throwing_global_getter_does_not_break_discovery(self, engine):
        entry = engine.load_bundle(
            "Object.defineProperty(self, 'Evil', {get: function () { throw new Error('boom'); },"
            " configurable: true, enumerable: true});"
            "var WineModel = {predict: function (rows) { return rows.length; }};"
        )
        assert engine.entry_path == "WineModel.predict"
        assert entry([[1]]) == 1

    def test_two_bundles_in_a_row_into_one_engine(self, engine):
        """Each load_bundle starts clean: the same library name loaded again (a hot swap) is found
        again, the earlier entry keeps working, and the host's module/exports come back."""
        engine.eval("var exports = 42;")
        first = (BUNDLES / "var.js").read_text(encoding="utf-8")
        second = (BUNDLES / "assign.js").read_text(encoding="utf-8")
        predict_a = engine.load_bundle(first, filename="var.js")
        assert engine.entry_path == "WineModel.predict"
        assert engine.eval("exports") == 42 and engine.eval("typeof module") == "undefined"
        predict_b = engine.load_bundle(second, filename="assign.js")
        assert engine.entry_path == "WineModel.predict"
        assert predict_b(EXAMPLE_IN) == EXAMPLE_OUT
        umd = engine.load_bundle((BUNDLES / "umd.js").read_text(encoding="utf-8"), filename="umd.js")
        assert engine.entry_path == "module.exports.predict"
        assert umd(EXAMPLE_IN) == EXAMPLE_OUT
        assert predict_a(EXAMPLE_IN) == EXAMPLE_OUT
        assert engine.eval("exports") == 42 and engine.eval("typeof module") == "undefined"
        with pytest.raises(ShimError):
            engine.load_bundle("var unrelated = 1;")
        assert engine.eval("typeof __jsml_entry") == "undefined"

    # ================================================================== errors
    def test_js_error_carries_name_message_and_stack(self, engine):
        with pytest.raises(JSError) as info:
            engine.eval("function inner() { null.x; }\nfunction outer() { inner(); }\nouter();", filename="app.js")
        err = info.value
        assert isinstance(err, JSEngineMLError) and not isinstance(err, JSSyntaxError)
        assert err.js_name == "TypeError"
        assert err.js_message and "null" in err.js_message
        assert "inner" in err.js_stack
        _assert_usable(engine)

    @pytest.mark.parametrize("filename", ["my-model.js", "/srv/bundles/wine.bundle.js"])
    def test_js_error_stack_names_the_eval_filename(self, engine, filename):
        with pytest.raises(JSError) as info:
            engine.eval("var a = 1;\n\nthrow new RangeError('out of range');", filename=filename)
        assert info.value.js_name == "RangeError"
        assert info.value.js_message == "out of range"
        assert filename in info.value.js_stack
        with pytest.raises(JSError) as info:
            engine.eval("function f() { undefinedFunction(); }\nf();", filename=filename)
        assert info.value.js_name == "ReferenceError"
        assert filename in info.value.js_stack
        _assert_usable(engine)

    def test_promise_jobs_queued_by_a_failing_call_run_at_the_next_crossing(self, engine):
        """A call that queues a promise job and then throws leaves the job pending; the next eval
        must still run it (Duktape once marked the jobs drained before the call ran)."""
        engine.eval("var ran = 0; function queueThenThrow() { Promise.resolve().then(function () { ran++; });"
                    " throw new Error('after queueing'); }")
        with pytest.raises(JSError):
            engine.call("queueThenThrow")
        engine.eval("void 0")
        assert engine.eval("ran") == 1

    def test_errors_from_called_functions_raise_js_error(self, engine):
        engine.eval("function bad(x) { throw new TypeError('bad ' + x); }")
        with pytest.raises(JSError) as info:
            engine.call("bad", 7)
        assert (info.value.js_name, info.value.js_message) == ("TypeError", "bad 7")
        with pytest.raises(JSError):
            engine.call("doesNotExist")
        _assert_usable(engine)

    def test_syntax_error_carries_filename_and_line(self, engine):
        with pytest.raises(JSSyntaxError) as info:
            engine.eval("var ok = 1;\nvar also = 2;\nvar broken = ;\n", filename="broken.js")
        err = info.value
        assert err.js_name == "SyntaxError"
        assert err.filename == "broken.js"
        assert err.line == 3
        _assert_usable(engine)

    @pytest.mark.parametrize("thrown", ["42", "'x'", "null", "{code: 7}"], ids=["number", "string", "null", "object"])
    def test_thrown_non_error_values_raise_js_error(self, engine, thrown):
        with pytest.raises(JSError) as info:
            engine.eval(f"throw {thrown};")
        assert type(info.value) is JSError
        _assert_usable(engine)

    @pytest.mark.parametrize(("thrown", "shown"), [("42", "42"), ("'oops'", "oops")], ids=["number", "string"])
    def test_thrown_non_error_value_is_named_in_the_message(self, engine, thrown, shown):
        with pytest.raises(JSError) as info:
            engine.eval(f"throw {thrown};")
        assert shown in info.value.js_message

    def test_infinite_recursion_raises_js_error_not_a_crash(self, engine):
        """Stack exhaustion is a catchable JS error (RangeError; QuickJS names it InternalError)."""
        with pytest.raises(JSError) as info:
            engine.eval("function down(n) { return 1 + down(n + 1); } down(0);")
        assert info.value.js_name in ("RangeError", "InternalError")
        assert engine.eval("(function () { try { return down(0); } catch (e) { return 'caught'; } })()") == "caught"
        _assert_usable(engine)

    def test_no_binding_exception_escapes(self, engine):
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
            _assert_usable(engine)

    # ================================================================== limits
    def test_time_limit_stops_an_infinite_loop(self, engine_factory, caps):
        if not caps.time_limit:
            pytest.skip(f"{caps.backend} has no time limit (see test_limits_the_backend_cannot_enforce_are_refused)")
        limited = engine_factory(time_limit=0.5)
        for run in (lambda: limited.eval("while (true) {}"), lambda: limited.call("(function () { for (;;) {} })"),
                    lambda: limited.eval(ALLOCATING_LOOP)):
            started = time.monotonic()
            with pytest.raises(JSTimeoutError):
                run()
            assert time.monotonic() - started < 0.5 + 1.0
            _assert_usable(limited)

    def test_time_limit_stops_a_loop_in_a_promise_job(self, engine_factory, caps):
        """A job that never ends is stopped like a call (QuickJS turns it into a rejection first)."""
        if not caps.time_limit:
            pytest.skip(f"{caps.backend} has no time limit")
        limited = engine_factory(time_limit=0.5)
        started = time.monotonic()
        with pytest.raises(JSTimeoutError) as info:
            limited.settle("Promise.resolve().then(function () { for (;;) {} })", timeout=30)
        assert time.monotonic() - started < 0.5 + 1.0
        if limited.closed:  # an engine that cannot stop the job gives up on it, and says so
            assert "isolation" in str(info.value)
        else:
            _assert_usable(limited)

    def test_time_limit_is_wall_clock_time(self, engine_factory, caps):
        """A limit counts wall-clock time, not the CPU time the engine's thread got: with the other
        cores busy, a loop under time_limit=0.5 still stops within 0.5 s + 1 s."""
        if not caps.time_limit:
            pytest.skip(f"{caps.backend} has no time limit")
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

    def test_limits_the_backend_cannot_enforce_are_refused(self, engine_factory, caps):
        """A backend either enforces a limit or refuses it with CapabilityError, never ignores it."""
        if caps.time_limit and caps.memory_limit:
            pytest.skip("this backend enforces both limits")
        if not caps.time_limit:
            with pytest.raises(CapabilityError, match="isolation"):
                engine_factory(time_limit=1.0)
        if not caps.memory_limit_scope:
            with pytest.raises(CapabilityError, match="isolation"):
                engine_factory(memory_limit=64 * MiB)

    def test_a_heap_only_memory_limit_is_refused_unless_accepted(self, engine_factory, caps):
        """An engine whose memory limit misses ArrayBuffer stores (V8) says so rather than pretend."""
        if caps.memory_limit_scope != "heap":
            pytest.skip(f"{caps.backend}'s memory limit scope is {caps.memory_limit_scope!r}")
        with pytest.raises(CapabilityError, match="heap_only_limit"):
            engine_factory(memory_limit=64 * MiB)
        _assert_usable(engine_factory(memory_limit=64 * MiB, heap_only_limit=True))

    def test_memory_limit_stops_a_js_heap_bomb(self, engine_factory, caps):
        if not caps.memory_limit_scope:
            pytest.skip(f"{caps.backend} has no memory limit")
        limited = engine_factory(memory_limit=64 * MiB, heap_only_limit=caps.memory_limit_scope == "heap")
        with pytest.raises(JSMemoryLimitError):
            limited.eval(
                "(function () { var a = [];"
                " for (var i = 0; i < 1e8; i++) { a.push({i: i, s: 'row ' + i, v: [i, i + 1]}); }"
                " return a.length; })()"
            )
        _assert_usable(limited)
        assert limited.eval("(function () { var a = []; for (var i = 0; i < 1000; i++) { a.push({i: i}); }"
                            " return a.length; })()") == 1000

    def test_memory_limit_stops_a_typed_array_bomb(self, engine_factory, caps):
        """Float64Arrays of 8 MiB each, every page written (untouched zero pages cost no memory), at
        most 512 MiB in all (an unenforced limit stays harmless)."""
        if caps.memory_limit_scope not in ("all", "process"):
            pytest.skip(f"{caps.backend}'s memory limit does not count typed arrays ({caps.memory_limit_scope!r})")
        limited = engine_factory(memory_limit=64 * MiB)
        with pytest.raises(JSMemoryLimitError):
            limited.eval(
                "(function () { var keep = [];"
                " for (var i = 0; i < 64; i++) { var a = new Float64Array(1024 * 1024);"
                "   for (var j = 0; j < a.length; j += 512) { a[j] = 1; } keep.push(a); }"
                " return keep.length; })()"
            )
        _assert_usable(limited)

    # ================================================================== strings
    @pytest.mark.parametrize("text", list(UNICODE_STRINGS.values()), ids=list(UNICODE_STRINGS))
    def test_unicode_string_round_trips_through_eval(self, engine, text):
        """A script's string result comes back exactly, even when it looks like the tagged JSON the
        engine layer uses for objects ("\ue000json:...") or holds a NUL."""
        assert engine.eval(json.dumps(text, ensure_ascii=False)) == text
        assert engine.eval(json.dumps(text, ensure_ascii=True)) == text
        assert engine.eval(json.dumps([text], ensure_ascii=True)) == [text]
        assert engine.settle(f"Promise.resolve({json.dumps(text)})") == text

    @pytest.mark.parametrize("text", list(UNICODE_STRINGS.values()), ids=list(UNICODE_STRINGS))
    def test_unicode_string_round_trips_through_call(self, engine, text):
        assert engine.call("(function (s) { return s; })", text) == text
        assert engine.call("(function (s) { return s.length; })", text) == len(text.encode("utf-16-le")) // 2
        assert engine.call("(function (o) { return o; })", {"k": text, text: [text]}) == {"k": text, text: [text]}

    # ================================================================== arrays
    def test_float32_special_values_bit_exact_through_put_and_get_array(self, engine):
        values = _special_float32()
        engine.put_array("specials", values)
        _assert_float32_identical(engine.get_array("specials"), values)
        engine.put_array("specials2d", values[:-1].reshape(-1, 1) if values.size % 2 else values.reshape(-1, 2))
        want = values[:-1].reshape(-1, 1) if values.size % 2 else values.reshape(-1, 2)
        got = engine.get_array("{data: specials2d, shape: __jsml.io.shapes.specials2d}")
        _assert_float32_identical(got, want)

    def test_float32_special_values_bit_exact_through_transform(self, engine):
        values = _special_float32()
        _assert_float32_identical(engine.transform(f"({IDENTITY})", values), values)
        rows = np.resize(values, (values.size // 13 + 1) * 13).reshape(-1, 13)
        _assert_float32_identical(engine.transform(f"({IDENTITY})", rows), rows)

    def test_values_written_in_js_come_back_bit_exact(self, engine):
        got = engine.get_array(
            "new Float32Array([0, -0, Infinity, -Infinity, 1.401298464324817e-45, 3.4028234663852886e38,"
            " -3.4028234663852886e38, 1.1754942106924411e-38])"
        )
        want = np.array([0, -0.0, np.inf, -np.inf, 1.401298464324817e-45, 3.4028234663852886e38,
                         -3.4028234663852886e38, 1.1754942106924411e-38], dtype=np.float32)
        _assert_float32_identical(got, want)
        assert np.isnan(engine.get_array("new Float32Array([NaN])")).all()

    @pytest.mark.parametrize("shape", [(0, 13), (1, 13), (10_000, 13), (1_000_000, 3)],
                             ids=["0x13", "1x13", "10000x13", "1000000x3"])
    def test_float32_shapes_round_trip(self, engine, shape):
        rng = np.random.default_rng(7)
        x = rng.standard_normal(shape).astype(np.float32)
        _assert_float32_identical(engine.transform(f"({IDENTITY})", x), x)
        engine.put_array("batch", x)
        _assert_float32_identical(engine.get_array("{data: batch, shape: __jsml.io.shapes.batch}"), x)
        assert engine.eval("batch.length") == x.size

    def test_int32_round_trip_including_extremes(self, engine):
        info = np.iinfo(np.int32)
        x = np.array([info.min, info.min + 1, -1, 0, 1, info.max - 1, info.max], dtype=np.int32)
        engine.put_array("ints", x)
        got = engine.get_array("ints")
        assert got.dtype == np.int32
        np.testing.assert_array_equal(got, x)
        assert engine.eval("ints[0] === -2147483648 && ints[6] === 2147483647")
        got = engine.transform(f"({IDENTITY})", x.reshape(7, 1))
        assert got.dtype == np.int32
        np.testing.assert_array_equal(got, x.reshape(7, 1))

    def test_uint8_round_trip(self, engine):
        x = np.arange(256, dtype=np.uint8)
        engine.put_array("bytes", x)
        got = engine.get_array("bytes")
        assert got.dtype == np.uint8
        np.testing.assert_array_equal(got, x)
        np.testing.assert_array_equal(engine.transform(f"({IDENTITY})", x.reshape(16, 16)), x.reshape(16, 16))

    def test_nested_python_lists_are_converted(self, engine):
        """Nested lists of floats become float32 and of ints int32 (float64 ndarrays are refused)."""
        got = engine.transform(f"({IDENTITY})", [[0.5, 1.5], [2.5, -3.25]])
        assert got.dtype == np.float32
        np.testing.assert_array_equal(got, np.array([[0.5, 1.5], [2.5, -3.25]], np.float32))
        got = engine.transform(f"({IDENTITY})", [[1, 2], [3, 4]])
        assert got.dtype == np.int32
        assert engine.get_array("[[1, 2], [3, 4]]").tolist() == [[1, 2], [3, 4]]

    @pytest.mark.parametrize(("value", "mentions"), [
        (np.zeros((2, 3), dtype=np.float64), "astype"),
        (np.zeros(3, dtype=np.complex64), "complex64"),
        (np.array(["a", "b"]), "dtype"),
        (np.array([1, "a", None], dtype=object), "object"),
        ([[1.0, 2.0], [3.0]], "ragged"),
        (np.float32(1.5), "dimensions"),
        (np.zeros((1, 1, 1, 1, 1, 1), dtype=np.float32), "dimensions"),
    ], ids=["float64-ndarray", "complex", "strings", "object-dtype", "ragged-lists", "0-d-scalar", "6-dims"])
    def test_bad_input_is_refused_with_input_error(self, engine, value, mentions):
        for use in (lambda: engine.put_array("bad", value), lambda: engine.transform(f"({IDENTITY})", value)):
            with pytest.raises(InputError) as info:
                use()
            assert mentions in str(info.value)
            assert "float32" in str(info.value) or "rectangular" in str(info.value) or "1 to" in str(info.value)
        assert engine.eval("typeof bad") == "undefined"
        _assert_usable(engine)

    def test_ragged_js_result_raises_js_error(self, engine):
        with pytest.raises(JSError) as info:
            engine.transform("(function () { return [[1, 2], [3]]; })", np.zeros((2, 2), np.float32))
        assert info.value.js_name == "RangeError"
        assert "ragged" in info.value.js_message
        with pytest.raises(JSError):
            engine.get_array("[[1, 2], [3]]")
        _assert_usable(engine)
        np.testing.assert_array_equal(engine.transform(f"({IDENTITY})", np.ones(3, np.float32)), np.ones(3))

    # ================================================================== threads
    @pytest.mark.parametrize("method", [
        "eval", "eval_file", "function", "call", "put_array", "get_array", "transform", "settle", "run_timers",
        "add_resource", "load_bundle", "installed_shims", "close",
    ])
    def test_every_public_method_refuses_other_threads(self, engine, tmp_path, method):
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
        _assert_usable(engine)

    @pytest.fixture
    def _registered_name(self, _available_class: type[Engine]) -> Iterator[str]:
        """A registry name for the class under test (registered for the test if it has none)."""
        from .. import backends

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

    def test_main_thread_only_engines_refuse_other_threads_naming_isolation(self, _available_class, caps):
        """A binding that runs JavaScript on the main thread only (caps.main_thread_only) refuses to
        create or adopt an engine elsewhere, saying isolation="process" is the way out."""
        if not caps.main_thread_only:
            pytest.skip(f"{caps.backend} engines may live on any thread")
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
            _assert_usable(engine)  # the refused adopt() left it with its owner
        finally:
            engine.close()

    def test_thread_local_engine_gives_each_thread_its_own_engine(self, _registered_name, caps):
        if caps.main_thread_only:
            pytest.skip(f"{caps.backend} runs on the main thread only (see the main-thread-only case)")
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

    # ================================================================== lifecycle
    def test_close_is_idempotent(self, engine_factory):
        engine = engine_factory()
        engine.close()
        engine.close()
        assert engine.closed

    def test_context_manager_closes(self, engine_factory):
        with engine_factory() as engine:
            assert engine.eval("1 + 1") == 2
        assert engine.closed

    @pytest.mark.parametrize("method", [
        "eval", "eval_file", "function", "call", "put_array", "get_array", "transform", "settle", "run_timers",
        "add_resource", "load_bundle", "installed_shims",
    ])
    def test_methods_after_close_raise_engine_closed_error(self, engine_factory, tmp_path, method):
        engine = engine_factory()
        engine.close()
        script = tmp_path / "s.js"
        script.write_text("1", encoding="utf-8")
        calls: dict[str, Callable[[], Any]] = {
            "eval": lambda: engine.eval("1"),
            "eval_file": lambda: engine.eval_file(script),
            "function": lambda: engine.function("f"),
            "call": lambda: engine.call("f"),
            "put_array": lambda: engine.put_array("x", np.zeros(1, np.float32)),
            "get_array": lambda: engine.get_array("x"),
            "transform": lambda: engine.transform("f", np.zeros(1, np.float32)),
            "settle": lambda: engine.settle("1"),
            "run_timers": lambda: engine.run_timers(),
            "add_resource": lambda: engine.add_resource("a", b""),
            "load_bundle": lambda: engine.load_bundle("var a;"),
            "installed_shims": lambda: engine.installed_shims(),
        }
        with pytest.raises(EngineClosedError):
            calls[method]()

    def test_eval_file_names_the_file_in_errors(self, engine, tmp_path):
        path = tmp_path / "from_disk.js"
        path.write_text("var fromDisk = 5;\nfunction boom() { throw new Error('disk'); }\n", encoding="utf-8")
        engine.eval_file(path)
        assert engine.eval("fromDisk") == 5
        path2 = tmp_path / "boom_now.js"
        path2.write_text("\nthrow new Error('now');\n", encoding="utf-8")
        with pytest.raises(JSError) as info:
            engine.eval_file(path2)
        assert "boom_now.js" in info.value.js_stack

    # ================================================================== capabilities
    def test_capabilities_are_well_formed(self, _available_class, caps):
        assert isinstance(caps, Capabilities)
        assert caps.backend == _available_class.name
        for field in ("engine", "engine_version", "binding", "language", "binary_path", "thread_rule"):
            value = getattr(caps, field)
            assert isinstance(value, str) and value.strip(), field
        assert isinstance(caps.es_version, int) and (caps.es_version in (3, 5) or 2015 <= caps.es_version <= 2030)
        for field in ("webassembly", "time_limit", "native_promises"):
            assert isinstance(getattr(caps, field), bool), field
        assert caps.memory_limit is None or (isinstance(caps.memory_limit, str) and caps.memory_limit.strip())
        assert json.loads(json.dumps(caps.as_dict())) == caps.as_dict()
        assert _available_class.capabilities() == caps

    def test_capabilities_match_the_running_engine(self, engine, caps):
        """native_promises, webassembly and the engine name agree with what the engine shows."""
        assert ("Promise" not in engine.installed_shims()) == caps.native_promises
        assert engine.eval("typeof WebAssembly === 'object'") == caps.webassembly
        detected = [name for name, probe in ENGINE_FINGERPRINTS.items() if engine.eval(probe)]
        if caps.engine in ENGINE_FINGERPRINTS:
            assert detected == [caps.engine]
        else:
            assert detected == [], f"{caps.engine} looks like {detected}"

    def test_es2015_arrow_function_parses_iff_declared(self, engine, caps):
        parses = self._parses(engine, ES_SYNTAX[2015])
        assert parses == (caps.es_version >= 2015)

    def test_es_version_declared_syntax_parses(self, engine, caps):
        failing = [year for year, source in ES_SYNTAX.items() if year <= caps.es_version
                   and not self._parses(engine, source)]
        assert not failing, f"es_version {caps.es_version} but ES{failing} syntax does not parse"

    def test_es_version_is_not_understated(self, engine, caps):
        newer = {year: src for year, src in ES_SYNTAX.items() if year > caps.es_version}
        if not newer:
            pytest.skip(f"no syntax marker newer than ES{caps.es_version}")
        assert not all(self._parses(engine, src) for src in newer.values()), (
            f"every marker of ES{list(newer)} parses: es_version {caps.es_version} understates the engine"
        )

    @staticmethod
    def _parses(engine: Engine, source: str) -> bool:
        return bool(engine.call("(function (src) { try { new Function(src); return true; }"
                                " catch (e) { if (e instanceof SyntaxError) { return false; } throw e; } })", source))

    # ================================================================== call()
    def test_call_dotted_path_binds_this(self, engine):
        engine.eval("var model = {scale: 3, inner: {k: 5, f: function (x) { return x * this.k; }},"
                    " predict: function (x) { return x * this.scale; }};")
        assert engine.call("model.predict", 2) == 6
        assert engine.call("model.inner.f", 2) == 10
        assert engine.function("model.predict")(4) == 12

    def test_call_arguments_round_trip_as_json(self, engine):
        args = [1, -2.5, "ü😀", True, None, [1, [2, {"a": "b"}]], {"nested": {"x": [1.5e300, -0.0]}}]
        assert engine.call("(function () { return Array.prototype.slice.call(arguments); })", *args) == args
        assert engine.call("(function (a, b) { return typeof a + ',' + typeof b; })", 1) == "number,undefined"

    @pytest.mark.parametrize("bad", [object(), {1, 2}, b"bytes", float("nan"), float("inf"), np.zeros(2)],
                             ids=["object", "set", "bytes", "nan", "inf", "ndarray"])
    def test_call_non_json_arguments_raise_input_error(self, engine, bad):
        engine.eval("function echo(x) { return x; }")
        with pytest.raises(InputError):
            engine.call("echo", bad)
        with pytest.raises(InputError):
            engine.transform(f"({IDENTITY})", np.zeros(2, np.float32), bad)
        _assert_usable(engine)
