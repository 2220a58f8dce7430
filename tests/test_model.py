"""DenseMatrixModel and loading: input handling, bad artifacts, bundles, the CLI bundle command."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

import jsengine_ml
from jsengine_ml import InputError, ModelError
from jsengine_ml.conformance.model_suite import REFERENCE_MODELS, golden, golden_named, reference_models_dir
from jsengine_ml.model import load

WINE = reference_models_dir() / "wine"
BACKENDS = [i.name for i in jsengine_ml.available_backends() if i.available]


@pytest.fixture(params=BACKENDS)
def engine(request: pytest.FixtureRequest):
    with jsengine_ml.create_engine(request.param) as eng:
        yield eng


@pytest.fixture(params=["compiled", "tfjs"])
def wine(request: pytest.FixtureRequest, engine):
    with load(WINE, engine=engine, runtime=request.param) as model:
        yield model


def test_predict_shapes_dtypes_and_containers(wine) -> None:
    x, y = golden("wine")
    assert wine.predict(x[:0]).shape == (0, 3)
    one = wine.predict(x[:1])
    assert one.shape == (1, 3) and one.dtype == np.float32
    np.testing.assert_allclose(wine.predict(x.astype(np.float64)), y, atol=1e-5)
    np.testing.assert_allclose(wine.predict(x.tolist()), y, atol=1e-5)
    pd = pytest.importorskip("pandas")
    np.testing.assert_allclose(wine.predict(pd.DataFrame(x)), y, atol=1e-5)


def test_chunked_batches_equal_one_batch(wine) -> None:
    x, _ = golden("wine")
    whole = wine.predict(x)
    wine.max_batch_rows = 7
    np.testing.assert_array_equal(wine.predict(x), whole)


def test_no_tensor_leak_across_predictions(engine) -> None:
    x, _ = golden("wine")
    with load(WINE, engine=engine, runtime="tfjs") as wine:
        wine.predict(x)
        before = wine.tensors_in_engine()
        for _ in range(10):
            wine.predict(x)
        assert wine.tensors_in_engine() == before


#: What each built-in backend's models must report (facts about the engines, not copies of capabilities()).
ENGINE_FACTS = {"v8": ("V8", "wasm"), "quickjs": ("QuickJS", "es5"), "duktape": ("Duktape", "es5"),
                "spidermonkey": ("SpiderMonkey", "wasm")}


def test_metadata_describes_model_and_engine(wine, engine) -> None:
    md = wine.metadata
    assert md.input_shape == (None, 13) and md.output_shape == (None, 3)
    assert md.n_features == 13 and md.n_outputs == 3 and md.kind == "tfjs-layers"
    assert [(a.name, a.shape, a.dtype) for a in md.inputs] == [("features", (None, 13), "float32")]
    assert [(a.name, a.shape) for a in md.outputs] == [("probs", (None, 3))]
    engine_name, kernels = ENGINE_FACTS[engine.name]
    assert md.backend == engine.name and md.engine == engine_name
    assert re.match(r"(bundled with quickjs )?\d+(\.\d+| \(mozjs-)", md.engine_version), md.engine_version
    if wine.runtime == "tfjs":
        assert md.extra["tfjs"] == "4.22.0"
    else:
        assert md.extra["kernels"] == kernels


@pytest.mark.parametrize(
    "rows, message",
    [
        (np.zeros((2, 12), np.float32), "12 columns"),
        (np.zeros(13, np.float32), "2-D"),
        (np.array([[np.nan] * 13], np.float32), "non-finite"),
        (np.array([[np.inf] * 13]), "non-finite"),
        ([[1.0] * 13, [1.0] * 12], "ragged"),
        (np.array([["a"] * 13]), "dtype"),
    ],
)
def test_bad_rows_are_refused_and_model_stays_usable(wine, rows, message) -> None:
    with pytest.raises(InputError, match=message):
        wine.predict(rows)
    x, y = golden("wine")
    np.testing.assert_allclose(wine.predict(x), y, atol=1e-5)


def _copy_wine(tmp_path: Path) -> Path:
    target = tmp_path / "wine"
    shutil.copytree(WINE, target)
    return target


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda d: (d / "model.json").write_text((d / "model.json").read_text()[:200]), "not valid JSON"),
        (lambda d: (d / "model.json").write_text("{}"), "no modelTopology"),
        (lambda d: next(d.glob("*.bin")).write_bytes(next(d.glob("*.bin")).read_bytes()[:-4]), "wrong size"),
        (lambda d: next(d.glob("*.bin")).unlink(), "missing"),
    ],
    ids=["truncated-json", "not-a-model", "short-shard", "missing-shard"],
)
def test_broken_artifacts_name_the_file_and_engine_survives(engine, tmp_path, damage, message) -> None:
    folder = _copy_wine(tmp_path)
    damage(folder)
    with pytest.raises(ModelError, match=message) as info:
        load(folder, engine=engine)
    assert str(folder) in str(info.value)
    with load(WINE, engine=engine) as model:
        np.testing.assert_allclose(model.predict(golden("wine")[0]), golden("wine")[1], atol=1e-5)


def test_bundle_without_predict_is_a_clear_error(engine, tmp_path) -> None:
    bundle = tmp_path / "nothing.js"
    bundle.write_text("var helper = { score: function () { return 1; } };")
    with pytest.raises(ModelError, match=r"nothing\.js") as info:
        load(bundle, engine=engine, n_features=2)
    assert "helper" in str(info.value)
    assert engine.eval("1 + 1") == 2


def test_bundle_whose_output_is_not_2d_is_refused(engine, tmp_path) -> None:
    bundle = tmp_path / "flat.js"
    bundle.write_text("function predict(rows) { return rows.map(function (r) { return r[0]; }); }")
    with pytest.raises(ModelError, match=r"shape \(3,\) for 3 rows.*\(n, \.\.\.\) output"):
        load(bundle, engine=engine, n_features=2).predict(np.ones((3, 2), np.float32))


def test_async_bundle_returning_typed_arrays(engine, tmp_path) -> None:
    bundle = tmp_path / "async.js"
    bundle.write_text(
        "module.exports = { predict: function (rows) { return new Promise(function (ok) {"
        " setTimeout(function () { var out = new Float32Array(rows.length * 2);"
        " for (var i = 0; i < rows.length; i++) { out[2*i] = rows[i][0] + rows[i][1]; out[2*i+1] = -1; }"
        " ok({data: out, shape: [rows.length, 2]}); }, 1); }); } };"
    )
    model = load(bundle, engine=engine, n_features=2)
    out = model.predict(np.array([[1, 2], [3, 4]], np.float32))
    np.testing.assert_array_equal(out, [[3, -1], [7, -1]])
    assert model.metadata.n_outputs == 2


@pytest.mark.parametrize("runtime", ["compiled", "tfjs"])
def test_bundle_with_pre_and_post_processing_matches_keras(tmp_path, runtime) -> None:
    from jsengine_ml.bundle import write_bundle
    from jsengine_ml.demo import wine_stream

    scaler = json.loads((WINE / "preprocess.json").read_text())
    pre = tmp_path / "pre.js"
    pre.write_text(
        f"var MEAN = {json.dumps(scaler['mean'])}, SCALE = {json.dumps(scaler['scale'])};\n"
        "function preprocess(rows) { return rows.map(function (r) {"
        " return r.map(function (v, j) { return (v - MEAN[j]) / SCALE[j]; }); }); }"
    )
    post = tmp_path / "post.js"
    post.write_text(
        "function postprocess(rows) { return rows.map(function (p) {"
        " return p.concat([p.indexOf(Math.max.apply(null, p))]); }); }"
    )
    bundle = write_bundle(WINE, tmp_path / "wine.bundle.js", pre=pre, post=post, runtime=runtime)
    raw = np.load(WINE / "stream.npz")["x_raw"]
    x, labels = wine_stream()
    with load(WINE) as reference, load(bundle, n_features=13) as model:
        out = model.predict(raw)
        np.testing.assert_allclose(out[:, :3], reference.predict(x), atol=1e-5)
        np.testing.assert_array_equal(out[:, 3], np.argmax(out[:, :3], axis=1))
    assert np.mean(out[:, 3] == labels) > 0.9


def test_missing_tfjs_names_the_install_command(monkeypatch, tmp_path) -> None:
    from jsengine_ml import runtime

    monkeypatch.setattr(runtime, "candidate_dirs", lambda: [tmp_path])
    with pytest.raises(ModelError, match="jsengine-ml install-js"):
        load(WINE, runtime="tfjs")


def test_cli_bundle_and_predict(tmp_path, capsys) -> None:
    from jsengine_ml.cli import main

    out = tmp_path / "wine.bundle.js"
    assert main(["bundle", str(WINE), "-o", str(out)]) == 0
    assert "bytes" in capsys.readouterr().out
    x, y = golden("wine")
    csv = tmp_path / "rows.csv"
    np.savetxt(csv, x[:5], delimiter=",")
    assert main(["predict", str(out), str(csv)]) == 0
    printed = np.loadtxt(capsys.readouterr().out.splitlines(), delimiter=",")
    np.testing.assert_allclose(printed, y[:5], atol=1e-5)


def _wine_with_masking(tmp_path: Path) -> Path:
    """The Wine artifact with a Masking layer (tfjs runs it; the compiled runtime does not cover it)."""
    folder = tmp_path / "wine_masking"
    shutil.copytree(WINE, folder)
    spec = json.loads((folder / "model.json").read_text())
    layers = spec["modelTopology"]["config"]["layers"]
    layers.insert(1, {"class_name": "Masking", "config": {"name": "masking", "mask_value": 0.0, "dtype": "float32"}})
    (folder / "model.json").write_text(json.dumps(spec))
    return folder


def test_compiled_runtime_names_the_layer_it_does_not_cover(tmp_path: Path) -> None:
    from jsengine_ml.compiled.plan import UnsupportedModelError

    with pytest.raises(UnsupportedModelError, match=r"'masking' \(Masking\).*runtime='tfjs'"):
        load(_wine_with_masking(tmp_path), runtime="compiled")


def test_auto_runtime_falls_back_to_tfjs_and_says_why(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    x, y = golden("wine")
    with caplog.at_level("WARNING", logger="jsengine_ml.model"), load(_wine_with_masking(tmp_path)) as model:
        assert model.runtime == "tfjs"
        assert "Masking" in model.metadata.extra["runtime_reason"]
        np.testing.assert_allclose(model.predict(x), y, atol=1e-5)
    assert any("Masking" in r.getMessage() and "tfjs" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("name", ["wine", "digits_cnn", "sequence_lstm", "embedding"])
def test_compiled_runtime_needs_no_tfjs(name: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from jsengine_ml import runtime

    monkeypatch.setattr(runtime, "candidate_dirs", lambda: [tmp_path])  # no tfjs anywhere
    x, y = golden(name)
    with load(reference_models_dir() / name) as model:
        np.testing.assert_allclose(model.predict(x), y, atol=1e-5)
        assert model.metadata.extra["runtime"] == "compiled"


def test_kernels_runtime_is_an_alias_of_compiled() -> None:
    with pytest.warns(DeprecationWarning, match="compiled"), load(WINE, runtime="kernels") as model:
        assert model.runtime == "compiled"


def test_unknown_runtime_is_refused_clearly() -> None:
    with pytest.raises(InputError, match="runtime must be one of 'auto', 'compiled', 'tfjs', got 'nope'"):
        load(WINE, runtime="nope")


def test_token_ids_outside_the_vocabulary_are_refused_by_position(engine) -> None:
    x, y = golden("embedding")
    with load(reference_models_dir() / "embedding", engine=engine) as model:
        bad = x.copy()
        bad[3, 5] = 40  # the vocabulary is [0, 40)
        with pytest.raises(InputError, match=r"token id 40 at row 3, column 5 is outside the vocabulary \[0, 40\)"):
            model.predict(bad)
        bad[3, 5] = -1
        with pytest.raises(InputError, match="token id -1 at row 3"):
            model.predict(bad)
        np.testing.assert_allclose(model.predict(x), y, atol=1e-5)


def test_bundle_without_a_declared_width_learns_it_from_the_first_batch(engine, tmp_path) -> None:
    bundle = tmp_path / "sum.js"
    bundle.write_text("function predict(rows) { return rows.map(function (r) {"
                      " return [r.reduce(function (a, b) { return a + b; }, 0)]; }); }")
    with load(bundle, engine=engine) as model:  # no n_features: the first batch fixes the width
        assert model.metadata.inputs[0].shape == (None, None)
        np.testing.assert_allclose(model.predict(np.ones((2, 5), np.float32)), [[5], [5]])
        assert model.metadata.inputs[0].shape == (None, 5) and model.metadata.n_outputs == 1
        with pytest.raises(InputError, match=r"rows have 4 columns.*takes 5"):
            model.predict(np.ones((2, 4), np.float32))
        np.testing.assert_allclose(model.predict(np.arange(10, dtype=np.float32).reshape(2, 5)), [[10], [35]])


@pytest.mark.parametrize("rows", [np.ones((2, 13), np.bool_), np.ones((2, 13), np.float16)], ids=["bool", "float16"])
def test_bool_and_float16_inputs_are_refused_with_the_conversion_to_make(wine, rows) -> None:
    with pytest.raises(InputError, match=r"dtype (bool|float16).*astype\(np.float32\)"):
        wine.predict(rows)


@pytest.mark.parametrize("name", REFERENCE_MODELS)
def test_compiled_batches_spanning_several_row_slices_match_keras(name: str, engine) -> None:
    """Big batches run in row slices (runtime.js); rows far past the first slice are still right."""
    inputs, outputs = golden_named(name) if name == "multi_io" else ({"x": golden(name)[0]}, {"y": golden(name)[1]})
    with load(reference_models_dir() / name, engine=engine, runtime="compiled") as model:
        info = json.loads(engine.call("__jsml.compiled.info", model._model_id))
        rows = 3 * int(info["sliceRows"]) + 5
        given = len(next(iter(inputs.values())))
        order = np.random.default_rng(0).integers(0, given, rows)  # not periodic in the slice length
        feeds = {k: v[order] for k, v in inputs.items()}
        if name == "multi_io":
            got = model.run(feeds)
        else:
            got = {"y": model.predict(feeds["x"])}
        for key, want in outputs.items():
            np.testing.assert_allclose(got[key], want[order], atol=1e-5, err_msg=f"{name} output {key}")


def test_unknown_options_are_input_errors_naming_what_is_accepted(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"unknown engine option\(s\) \['time_limt'\].*'time_limit'"):
        load(WINE, BACKENDS[0], time_limt=1.0)
    bundle = tmp_path / "wine.js"
    from jsengine_ml.bundle import write_bundle

    write_bundle(WINE, bundle)
    with pytest.raises(InputError, match=r"runtime= applies to model\.json artifacts; a bundle carries its runtime"):
        load(bundle, BACKENDS[0], runtime="compiled")
