"""Capabilities are well formed and agree with what the running engine shows."""

from __future__ import annotations

import json

import pytest

from ...engine import Capabilities, Engine
from ...errors import CapabilityError
from .fixtures import EngineFixtures, require

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
#: The engine's own version, where the engine shows it to scripts (as ``engine_version`` spells it).
ENGINE_VERSIONS = {
    "Duktape": "[Math.floor(Duktape.version / 10000), Math.floor(Duktape.version / 100) % 100,"
               " Duktape.version % 100].join('.')",
}


class CapabilityTests(EngineFixtures):
    """Capabilities are well formed and agree with what the running engine shows."""

    def test_capabilities_are_well_formed(self, _available_class: type[Engine], caps: Capabilities) -> None:
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

    def test_capabilities_match_the_running_engine(self, engine: Engine, caps: Capabilities) -> None:
        """native_promises, webassembly, the engine's name and version agree with what the engine shows."""
        assert ("Promise" not in engine.installed_shims()) == caps.native_promises
        assert engine.eval("typeof WebAssembly === 'object'") == caps.webassembly
        detected = [name for name, probe in ENGINE_FINGERPRINTS.items() if engine.eval(probe)]
        if caps.engine in ENGINE_FINGERPRINTS:
            assert detected == [caps.engine]
        else:
            assert detected == [], f"{caps.engine} looks like {detected}"
        if caps.engine in ENGINE_VERSIONS:
            assert engine.eval(ENGINE_VERSIONS[caps.engine]) == caps.engine_version

    def test_zero_copy_is_declared_iff_map_buffer_shares_memory(self, engine: Engine, caps: Capabilities) -> None:
        """zero_copy: map_buffer() gives a view that JavaScript and Python both write through, or
        (without it) CapabilityError."""
        # 64 KiB: SpiderMonkey maps only buffers whose data lives outside the (movable) object
        engine.eval("var shared = new Uint8Array(65536); shared[3] = 7;")
        if not caps.zero_copy:
            with pytest.raises(CapabilityError, match="zero_copy"):
                engine.map_buffer("shared.buffer")
            return
        view = engine.map_buffer("shared.buffer")
        assert len(view) == 65536 and view[3] == 7
        view[5] = 42
        assert engine.eval("shared[5]") == 42
        engine.eval("shared[6] = 9")
        assert view[6] == 9
        view.release()

    def test_es2015_arrow_function_parses_iff_declared(self, engine: Engine, caps: Capabilities) -> None:
        parses = self._parses(engine, ES_SYNTAX[2015])
        assert parses == (caps.es_version >= 2015)

    def test_es_version_declared_syntax_parses(self, engine: Engine, caps: Capabilities) -> None:
        failing = [year for year, source in ES_SYNTAX.items() if year <= caps.es_version
                   and not self._parses(engine, source)]
        assert not failing, f"es_version {caps.es_version} but ES{failing} syntax does not parse"

    def test_es_version_is_not_understated(self, engine: Engine, caps: Capabilities) -> None:
        newer = {year: src for year, src in ES_SYNTAX.items() if year > caps.es_version}
        require(caps, "es_version", bool(newer), "the suite has no syntax marker of a newer edition")
        assert not all(self._parses(engine, src) for src in newer.values()), (
            f"every marker of ES{list(newer)} parses: es_version {caps.es_version} understates the engine"
        )

    @staticmethod
    def _parses(engine: Engine, source: str) -> bool:
        return bool(engine.call("(function (src) { try { new Function(src); return true; }"
                                " catch (e) { if (e instanceof SyntaxError) { return false; } throw e; } })", source))

