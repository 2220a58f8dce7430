"""The global object, the stand-ins the shims install, console routing and text encoding."""

from __future__ import annotations

import base64
import logging

import pytest

from ...engine import Engine
from .fixtures import EngineFixtures


class ShimTests(EngineFixtures):
    """The global object, the stand-ins the shims install, console routing and text encoding."""

    # ================================================================== global object and shims
    def test_global_object_is_reachable_under_every_common_name(self, engine: Engine) -> None:
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

    def test_document_stand_in_is_present_for_sealed_tfjs_bundles(self, engine: Engine) -> None:
        """No embedded engine has a DOM. A sealed webpack bundle of tfjs registers its browser
        platform only when window.document is non-null, so the global shim provides a stand-in."""
        assert engine.eval("typeof document === 'object' && document !== null && window.document === document")
        assert engine.eval("document.createElement('canvas').getContext('webgl')") is None
        if "document" in engine.installed_shims():
            assert engine.eval("document.jsengineMlStandIn") is True

    @pytest.mark.parametrize("name", ["TextEncoder", "TextDecoder", "atob", "btoa", "performance", "Promise"])
    def test_installed_shims_lists_exactly_what_the_engine_lacked(self, engine: Engine, name: str) -> None:
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
    def test_console_is_routed_to_python_logging(
        self, engine: Engine, caplog: pytest.LogCaptureFixture, method: str, level: int
    ) -> None:
        """QuickJS has no console and the consoles of V8 (mini-racer) and dukpy go nowhere useful:
        the global shim routes console.* to the "jsengine_ml.console" logger."""
        caplog.set_level(logging.DEBUG, logger="jsengine_ml.console")
        engine.eval(f"console.{method}('hello from', '{method}', 42)")
        records = [r for r in caplog.records if r.name == "jsengine_ml.console"]
        assert [(r.levelno, r.getMessage()) for r in records] == [(level, f"hello from {method} 42")]

    def test_console_formats_objects_as_json(self, engine: Engine, caplog: pytest.LogCaptureFixture) -> None:
        """Objects and arrays are logged as JSON, not as "[object Object]"."""
        caplog.set_level(logging.DEBUG, logger="jsengine_ml.console")
        engine.call("(function () { console.log('obj', {a: 1, b: [1, 2, 'x']}, [3, 4], null); })")
        records = [r.getMessage() for r in caplog.records if r.name == "jsengine_ml.console"]
        assert records == ['obj {"a":1,"b":[1,2,"x"]} [3,4] null']

    # ================================================================== encoding
    def test_text_encoder_decoder_round_trip_non_ascii(self, engine: Engine) -> None:
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

    def test_atob_btoa(self, engine: Engine) -> None:
        """None of the engines has atob/btoa (tfjs uses them for base64 weights): shimmed."""

        raw = bytes(range(256)).decode("latin-1")
        encoded = engine.call("(function (s) { return btoa(s); })", raw)
        assert encoded == base64.b64encode(bytes(range(256))).decode("ascii")
        assert engine.call("(function (s) { return atob(s); })", encoded) == raw
        assert engine.eval("atob(btoa('ab')) + atob(btoa('abc')) + btoa('')") == "ababc"

