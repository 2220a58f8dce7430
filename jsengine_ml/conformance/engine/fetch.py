"""fetch() served from resources registered by Python; no network."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from ...engine import Engine
from ...errors import (
    JSError,
)
from .fixtures import EngineFixtures, assert_usable


class FetchTests(EngineFixtures):
    """fetch() served from resources registered by Python; no network."""

    # ================================================================== fetch-less resources
    def test_fetch_serves_registered_bytes_as_array_buffer_json_and_text(self, engine: Engine) -> None:
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

    def test_fetch_serves_a_registered_local_file(self, engine: Engine, tmp_path: Path) -> None:
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
    def test_fetch_matches_url_variants(self, engine: Engine, registered: str, requested: str) -> None:
        engine.add_resource(registered, b'{"ok": true}')
        got = engine.settle(f"fetch({json.dumps(requested)}).then(function (r) {{ return r.json(); }})")
        assert got == {"ok": True}

    @pytest.mark.parametrize("url", ["http://example.com/model.json", "/tmp/not-registered/model.json"])
    def test_fetch_unregistered_url_rejects_naming_it(self, engine: Engine, url: str) -> None:
        engine.add_resource("other.json", b"{}")
        with pytest.raises(JSError) as info:
            engine.settle(f"fetch({json.dumps(url)})")
        assert info.value.js_name == "TypeError"
        assert url in info.value.js_message
        assert "network is not available" in info.value.js_message
        assert engine.settle("fetch('other.json').then(function (r) { return r.json(); })") == {}
        assert_usable(engine)

