"""Export discovery (jsengine_ml/shims/exports.js) on the raw engine bindings.

Temporary scaffolding: these drive mini-racer, quickjs and dukpy directly (no
jsengine_ml backend classes) over every bundle in
jsengine_ml/conformance/bundles/manifest.json.  The protocol exercised is:

    prelude (global aliases) ; exports.js ; __jsml_exports.begin() ;
    <bundle> ; __jsml_exports.find(hintJSON)  -> JSON string
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHIM = ROOT / "jsengine_ml" / "shims" / "exports.js"
BUNDLES = ROOT / "jsengine_ml" / "conformance" / "bundles"
BUILD_SCRIPT = ROOT / "scripts" / "build_webpack_fixtures.js"
WEBPACK = ROOT / "jsengine_ml" / "js" / "node_modules" / "webpack"

MANIFEST = json.loads((BUNDLES / "manifest.json").read_text())
EXAMPLE_IN = MANIFEST["example"]["input"]
EXAMPLE_OUT = MANIFEST["example"]["output"]

# Stand-in for the lead's global-object shim: alias the usual global names to
# the global object, only where the engine does not already define them.
PRELUDE = """
(function (g) {
  var names = ['globalThis', 'window', 'self', 'global'];
  for (var i = 0; i < names.length; i++) {
    if (typeof g[names[i]] === 'undefined') { g[names[i]] = g; }
  }
})(this);
"""


# --------------------------------------------------------------------------
# Engines: each wraps one persistent global scope.
# run(src) returns the value of the last expression when it is a string
# (all protocol calls return strings); exec(src) ignores the value.
# --------------------------------------------------------------------------
class Engine:
    name = "?"

    def run(self, src: str):
        raise NotImplementedError

    def exec(self, src: str) -> None:
        # "void 0" so no engine tries to convert an arbitrary last value.
        self.run(src + "\n;void 0")


class V8(Engine):
    name = "v8"

    def __init__(self):
        from py_mini_racer import MiniRacer

        self.ctx = MiniRacer()

    def run(self, src):
        return self.ctx.eval(src)


class QuickJS(Engine):
    name = "quickjs"

    def __init__(self):
        import quickjs

        self.ctx = quickjs.Context()

    def run(self, src):
        return self.ctx.eval(src)


class Duktape(Engine):
    name = "duktape"

    def __init__(self):
        import dukpy

        self.ctx = dukpy.JSInterpreter()

    def run(self, src):
        # evaljs returns json.loads(JSON of the last value): a JS string comes
        # back as a Python str, undefined as None.
        return self.ctx.evaljs(src)


ENGINES = {"v8": V8, "quickjs": QuickJS, "duktape": Duktape}


@pytest.fixture(params=sorted(ENGINES))
def engine(request) -> Engine:
    eng = ENGINES[request.param]()
    eng.exec(PRELUDE)
    eng.exec(SHIM.read_text())
    return eng


def discover(engine: Engine, bundle_src: str, hint: dict | None = None) -> dict:
    """begin() ; bundle ; find(hint) -> parsed result dict."""
    engine.exec("__jsml_exports.begin()")
    engine.exec(bundle_src)
    hint_json = json.dumps(hint or {})
    raw = engine.run(f"__jsml_exports.find({json.dumps(hint_json)})")
    assert isinstance(raw, str), f"find() must return a JSON string, got {raw!r}"
    return json.loads(raw)


def call_entry(engine: Engine, arg) -> object:
    return json.loads(engine.run(f"JSON.stringify(__jsml_entry({json.dumps(arg)}))"))


def bundle_ids(entries):
    return [e["file"] for e in entries]


# --------------------------------------------------------------------------
# Every manifest bundle, on every engine
# --------------------------------------------------------------------------
@pytest.mark.parametrize(
    "entry", MANIFEST["bundles"], ids=bundle_ids(MANIFEST["bundles"])
)
def test_bundle_entry_is_found_and_callable(engine, entry):
    result = discover(engine, (BUNDLES / entry["file"]).read_text())
    assert result["found"] == entry["expected_path"], result
    assert result["looked_at"], result
    assert call_entry(engine, EXAMPLE_IN) == EXAMPLE_OUT


@pytest.mark.parametrize(
    "entry",
    [e for e in MANIFEST["bundles"] if e["name"]],
    ids=bundle_ids(e for e in MANIFEST["bundles"] if e["name"]),
)
def test_bundle_with_library_name_hint(engine, entry):
    result = discover(
        engine, (BUNDLES / entry["file"]).read_text(), {"name": entry["name"]}
    )
    assert result["found"] == entry["expected_path"], result
    assert result["looked_at"][0].startswith("global " + entry["name"]), result
    assert call_entry(engine, EXAMPLE_IN) == EXAMPLE_OUT


@pytest.mark.parametrize(
    "entry", MANIFEST["negative"], ids=bundle_ids(MANIFEST["negative"])
)
def test_bundle_exporting_nothing(engine, entry):
    result = discover(engine, (BUNDLES / entry["file"]).read_text())
    assert result["found"] is None, result
    looked = result["looked_at"]
    assert any(s.startswith("module.exports") for s in looked), looked
    assert any(s.startswith("globals new since the bundle") for s in looked), looked
    assert engine.run("typeof __jsml_entry") == "undefined"


# --------------------------------------------------------------------------
# Protocol details (small inline bundles)
# --------------------------------------------------------------------------
def test_failure_lists_new_globals(engine):
    result = discover(
        engine, "var Helper = {score: function () { return 1; }}; var n = 3;"
    )
    assert result["found"] is None
    assert result["looked_at"] == [
        "module.exports (empty object)",
        "exports (same object as module.exports)",
        "globals new since the bundle: Helper (object with keys score), n (number)",
    ]


def test_shim_and_webpack_chunk_globals_are_ignored(engine):
    src = """
    self.webpackChunkwine_model = {predict: function () { return 'chunk'; }};
    var __jsml_decoy = {predict: function () { return 'shim'; }};
    """
    result = discover(engine, src)
    assert result["found"] is None, result
    assert "webpackChunk" not in json.dumps(result)
    assert "__jsml_decoy" not in json.dumps(result)


def test_custom_function_name_and_this_binding(engine):
    src = (
        "var Scorer = {k: 10, score: function (rows) { return rows.length * this.k; }};"
    )
    result = discover(engine, src, {"function": "score"})
    assert result["found"] == "Scorer.score"
    assert call_entry(engine, [[1], [2], [3]]) == 30


def test_dotted_name_hint(engine):
    src = "self.Models = {Wine: {predict: function (rows) { return rows.length; }}};"
    result = discover(engine, src, {"name": "Models.Wine"})
    assert result["found"] == "Models.Wine.predict"
    assert call_entry(engine, [[1], [2]]) == 2


def test_module_exports_function_itself(engine):
    result = discover(
        engine, "module.exports = function (rows) { return rows.length; };"
    )
    assert result["found"] == "module.exports"
    assert call_entry(engine, [[1], [2]]) == 2


def test_throwing_getter_and_bad_hint_do_not_throw(engine):
    src = """
    Object.defineProperty(self, 'Evil', {
      get: function () { throw new Error('boom'); }, configurable: true, enumerable: true
    });
    var WineModel = {predict: function (rows) { return rows.length; }};
    """
    engine.exec("__jsml_exports.begin()")
    engine.exec(src)
    result = json.loads(engine.run("__jsml_exports.find('{not json')"))
    assert result["found"] == "WineModel.predict", result
    assert result["looked_at"][0].startswith("hint (not valid JSON")


def test_begin_replaces_stale_entry_and_end_restores_host_globals(engine):
    engine.exec("self.exports = 42;")
    discover(engine, "var A = {predict: function () { return 'a'; }};")
    assert engine.run("__jsml_entry()") == "a"
    # A second bundle that exports nothing must not leave the old entry behind.
    assert discover(engine, "var unrelated = 1;")["found"] is None
    assert engine.run("typeof __jsml_entry") == "undefined"
    engine.exec("__jsml_exports.end()")
    assert engine.run("String(exports)") == "42"
    assert engine.run("typeof module") == "undefined"


# --------------------------------------------------------------------------
# The committed bundles are what the build script produces
# --------------------------------------------------------------------------
@pytest.mark.skipif(
    shutil.which("node") is None or not WEBPACK.is_dir(),
    reason="needs node and jsengine_ml/js/node_modules/webpack (npm ci in jsengine_ml/js)",
)
def test_rebuild_matches_committed_bundles(tmp_path):
    subprocess.run(
        ["node", str(BUILD_SCRIPT), str(tmp_path)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    rebuilt = json.loads((tmp_path / "manifest.json").read_text())
    assert rebuilt == MANIFEST
    for entry in MANIFEST["bundles"] + MANIFEST["negative"]:
        assert (tmp_path / entry["file"]).read_bytes() == (
            BUNDLES / entry["file"]
        ).read_bytes(), (
            f"{entry['file']} differs from a fresh build; "
            "rerun node scripts/build_webpack_fixtures.js"
        )
