"""load_bundle(): finding a (webpack) bundle's exported entry."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from ...engine import Engine
from ...errors import (
    ShimError,
)
from .fixtures import EngineFixtures, assert_usable

BUNDLES = Path(__file__).resolve().parent.parent / "bundles"
MANIFEST: dict[str, Any] = json.loads((BUNDLES / "manifest.json").read_text(encoding="utf-8"))
EXAMPLE_IN = MANIFEST["example"]["input"]
EXAMPLE_OUT = MANIFEST["example"]["output"]


class BundleTests(EngineFixtures):
    """load_bundle(): finding a (webpack) bundle's exported entry."""

    # ================================================================== webpack export discovery
    @pytest.mark.parametrize("entry", MANIFEST["bundles"], ids=[e["file"] for e in MANIFEST["bundles"]])
    def test_webpack_bundle_entry_is_found(self, engine: Engine, entry: dict[str, Any]) -> None:
        """Every webpack 5 output.library.type (and a hand-written bundle) exposes its entry."""
        source = (BUNDLES / entry["file"]).read_text(encoding="utf-8")
        predict = engine.load_bundle(source, filename=entry["file"])
        assert engine.entry_path == entry["expected_path"]
        assert predict(EXAMPLE_IN) == EXAMPLE_OUT

    @pytest.mark.parametrize(
        "entry", [e for e in MANIFEST["bundles"] if e["name"]],
        ids=[e["file"] for e in MANIFEST["bundles"] if e["name"]],
    )
    def test_webpack_bundle_with_library_name_hint(self, engine: Engine, entry: dict[str, Any]) -> None:
        source = (BUNDLES / entry["file"]).read_text(encoding="utf-8")
        predict = engine.load_bundle(source, filename=entry["file"], name=entry["name"])
        assert engine.entry_path == entry["expected_path"]
        assert predict(EXAMPLE_IN) == EXAMPLE_OUT

    @pytest.mark.parametrize("entry", MANIFEST["negative"], ids=[e["file"] for e in MANIFEST["negative"]])
    def test_bundle_exporting_nothing_raises_shim_error_listing_where_it_looked(
        self, engine: Engine, entry: dict[str, Any]
    ) -> None:
        source = (BUNDLES / entry["file"]).read_text(encoding="utf-8")
        with pytest.raises(ShimError) as info:
            engine.load_bundle(source, filename=entry["file"])
        message = str(info.value)
        assert entry["file"] in message
        assert "module.exports" in message
        assert "globals new since the bundle" in message
        assert engine.eval("typeof __jsml_entry") == "undefined"
        assert_usable(engine)

    def test_failed_discovery_lists_the_new_globals(self, engine: Engine) -> None:
        with pytest.raises(ShimError) as info:
            engine.load_bundle("var Helper = {score: function () { return 1; }}; var n = 3;", filename="helper.js")
        assert "globals new since the bundle: Helper (object with keys score), n (number)" in str(info.value)

    def test_explicit_function_and_dotted_name_hints(self, engine: Engine) -> None:
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

    def test_module_exports_function_itself_is_the_entry(self, engine: Engine) -> None:
        entry = engine.load_bundle("module.exports = function (rows) { return rows.length; };")
        assert engine.entry_path == "module.exports"
        assert entry([[1], [2]]) == 2

    def test_webpack_chunk_and_shim_globals_are_ignored(self, engine: Engine) -> None:
        with pytest.raises(ShimError) as info:
            engine.load_bundle(
                "self.webpackChunkwine_model = {predict: function () { return 'chunk'; }};"
                "var __jsml_decoy = {predict: function () { return 'shim'; }};"
            )
        assert "webpackChunk" not in str(info.value)
        assert "__jsml_decoy" not in str(info.value)

    def test_throwing_global_getter_does_not_break_discovery(self, engine: Engine) -> None:
        entry = engine.load_bundle(
            "Object.defineProperty(self, 'Evil', {get: function () { throw new Error('boom'); },"
            " configurable: true, enumerable: true});"
            "var WineModel = {predict: function (rows) { return rows.length; }};"
        )
        assert engine.entry_path == "WineModel.predict"
        assert entry([[1]]) == 1

    def test_two_bundles_in_a_row_into_one_engine(self, engine: Engine) -> None:
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

