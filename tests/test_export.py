"""Tests of the Keras 3 -> TF.js Layers exporter (jsengine_ml.export), run under KERAS_BACKEND=numpy.

When node and the bundled tfjs 4.22 node_modules are present, the fresh exports are loaded in tfjs
(scripts/verify_reference_models_node.js) and must reproduce the golden outputs within 1e-5.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

if "keras" not in sys.modules:
    os.environ["KERAS_BACKEND"] = "numpy"
keras = pytest.importorskip("keras")

from jsengine_ml.errors import ExportError, UnsupportedLayerError  # noqa: E402
from jsengine_ml.export import keras_to_tfjs  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
REF = ROOT / "jsengine_ml" / "reference_models"
NODE_SCRIPT = ROOT / "scripts" / "verify_reference_models_node.js"
TFJS = ROOT / "jsengine_ml" / "js" / "node_modules" / "@tensorflow" / "tfjs"
REFERENCE_MODELS = sorted(p.name for p in REF.glob("*") if (p / "model.keras").is_file())
TOL = 1e-5

layers = keras.layers


def _node() -> str | None:
    node = shutil.which("node")
    return node if node and TFJS.is_dir() and NODE_SCRIPT.is_file() else None


def _run_node(dirs: list[Path]) -> dict[str, dict[str, Any]]:
    node = _node()
    if node is None:
        pytest.skip("node or jsengine_ml/js/node_modules/@tensorflow/tfjs not available")
    proc = subprocess.run(
        [node, str(NODE_SCRIPT), "--json", *map(str, dirs)],
        check=False,
        capture_output=True,
        text=True,
        timeout=300,
    )
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    assert lines, f"node produced no JSON: {proc.stdout}\n{proc.stderr}"
    return {Path(r["dir"]).name: r for r in json.loads(lines[-1])["results"]}


def _manifest_bytes(model_json: dict[str, Any]) -> int:
    return sum(int(np.prod(w["shape"])) * 4 for g in model_json["weightsManifest"] for w in g["weights"])


def _shard_data(d: Path, model_json: dict[str, Any]) -> bytes:
    return b"".join((d / p).read_bytes() for g in model_json["weightsManifest"] for p in g["paths"])


# --------------------------------------------------------------------------- reference models


def test_reference_models_present() -> None:
    assert {"wine", "branches", "digits_cnn", "embedding"} <= set(REFERENCE_MODELS)
    assert {"sequence_lstm", "sequence_gru"} & set(REFERENCE_MODELS)


@pytest.fixture(scope="module")
def exports(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Every reference model.keras exported afresh (with its golden.npz copied alongside)."""
    base = tmp_path_factory.mktemp("exports")
    out = {}
    for name in REFERENCE_MODELS:
        d = base / name
        keras_to_tfjs(REF / name / "model.keras", d)
        shutil.copy(REF / name / "golden.npz", d / "golden.npz")
        out[name] = d
    return out


@pytest.mark.parametrize("name", REFERENCE_MODELS)
def test_export_structure(name: str, exports: dict[str, Path]) -> None:
    d = exports[name]
    model_json = json.loads((d / "model.json").read_text())
    assert model_json["format"] == "layers-model"
    assert model_json["generatedBy"].startswith("jsengine-ml ")
    assert model_json["convertedBy"] is None
    topo = model_json["modelTopology"]
    assert set(topo) == {"class_name", "config", "keras_version", "backend"}
    assert topo["class_name"] in ("Sequential", "Model")
    text = json.dumps(topo)
    for bad in (
        '"module"',
        '"registered_name"',
        '"batch_shape"',
        "DTypePolicy",
        "__keras_tensor__",
        '"build_config"',
        '"quantization_config"',
    ):
        assert bad not in text, bad
    for layer in topo["config"]["layers"]:
        assert isinstance(layer["config"].get("dtype", "float32"), str)
    if topo["class_name"] == "Model":
        cfg = topo["config"]
        assert all(isinstance(e, list) and len(e) == 3 for e in cfg["input_layers"] + cfg["output_layers"])
        for layer in cfg["layers"]:
            for node in layer["inbound_nodes"]:
                assert all(len(item) == 4 and item[3] == {} for item in node)
    (group,) = model_json["weightsManifest"]
    names = [w["name"] for w in group["weights"]]
    assert len(names) == len(set(names))
    assert all(w["dtype"] == "float32" for w in group["weights"])
    assert group["paths"] == ["group1-shard1of1.bin"]
    assert (d / "group1-shard1of1.bin").stat().st_size == _manifest_bytes(model_json)


@pytest.mark.parametrize("name", REFERENCE_MODELS)
def test_reexport_matches_committed(name: str, exports: dict[str, Path]) -> None:
    fresh = json.loads((exports[name] / "model.json").read_text())
    committed = json.loads((REF / name / "model.json").read_text())
    for key in ("class_name", "config"):
        assert fresh["modelTopology"][key] == committed["modelTopology"][key]
    assert fresh["weightsManifest"][0]["weights"] == committed["weightsManifest"][0]["weights"]
    assert _shard_data(exports[name], fresh) == _shard_data(REF / name, committed)


@pytest.mark.parametrize("name", REFERENCE_MODELS)
def test_reference_files(name: str) -> None:
    d = REF / name
    ref = json.loads((d / "reference.json").read_text())
    golden = np.load(d / "golden.npz")
    x, y = golden["x"], golden["y"]
    assert ref["name"] == name
    assert y.dtype == np.float32 and y.ndim == 2 and len(x) == len(y) >= 32
    assert x.dtype == (np.int32 if ref["input_dtype"] == "int32" else np.float32)
    assert ref["input_shape"] == [None, *x.shape[1:]]
    assert ref["output_shape"] == [None, y.shape[1]]
    assert sum(p.stat().st_size for p in d.iterdir()) < 200 * 1024


@pytest.mark.parametrize("name", REFERENCE_MODELS)
def test_keras_predict_matches_golden(name: str) -> None:
    model = keras.models.load_model(REF / name / "model.keras", compile=False)
    golden = np.load(REF / name / "golden.npz")
    y = np.asarray(model.predict(golden["x"], verbose=0))
    np.testing.assert_allclose(y, golden["y"], atol=TOL, rtol=0)


def test_wine_stream_and_preprocess() -> None:
    d = REF / "wine"
    pre = json.loads((d / "preprocess.json").read_text())
    assert len(pre["mean"]) == len(pre["scale"]) == 13
    stream = np.load(d / "stream.npz")
    assert stream["x_raw"].dtype == np.float32 and stream["x_raw"].shape[1] == 13
    assert stream["y"].dtype == np.int32 and len(stream["y"]) == len(stream["x_raw"])
    golden = np.load(d / "golden.npz")["x"]
    standardized = (stream["x_raw"][: len(golden)] - np.array(pre["mean"])) / np.array(pre["scale"])
    np.testing.assert_allclose(standardized, golden, atol=1e-5)


def test_node_reference_models(exports: dict[str, Path]) -> None:
    results = _run_node(list(exports.values()))
    errors = {name: r["maxAbsError"] for name, r in results.items()}
    print("node tfjs max abs errors:", errors)
    for name in REFERENCE_MODELS:
        r = results[name]
        assert r["ok"] and r["maxAbsError"] <= TOL, r


# --------------------------------------------------------------------------- sharding


def test_sharding(tmp_path: Path) -> None:
    one = keras_to_tfjs(REF / "digits_cnn" / "model.keras", tmp_path / "one")
    many = keras_to_tfjs(REF / "digits_cnn" / "model.keras", tmp_path / "many", shard_size_bytes=4000)
    mj_one, mj_many = json.loads(one.read_text()), json.loads(many.read_text())
    paths = mj_many["weightsManifest"][0]["paths"]
    n = len(paths)
    assert n > 1 and paths == [f"group1-shard{i}of{n}.bin" for i in range(1, n + 1)]
    assert all((tmp_path / "many" / p).stat().st_size <= 4000 for p in paths)
    assert _shard_data(tmp_path / "many", mj_many) == _shard_data(tmp_path / "one", mj_one)
    assert _manifest_bytes(mj_many) == sum((tmp_path / "many" / p).stat().st_size for p in paths)
    # re-exporting into the same directory with one shard removes the stale shards
    keras_to_tfjs(REF / "digits_cnn" / "model.keras", tmp_path / "many")
    assert sorted(p.name for p in (tmp_path / "many").glob("*.bin")) == ["group1-shard1of1.bin"]
    if _node():
        keras_to_tfjs(REF / "digits_cnn" / "model.keras", tmp_path / "many", shard_size_bytes=4000)
        shutil.copy(REF / "digits_cnn" / "golden.npz", tmp_path / "many" / "golden.npz")
        r = _run_node([tmp_path / "many"])["many"]
        assert r["ok"] and r["maxAbsError"] <= TOL, r


# --------------------------------------------------------------------------- extra layers in node


def _zoo_cnn() -> keras.Model:
    img = keras.Input((6, 6, 2), name="img")
    c1 = layers.Conv2D(4, 3, padding="same", activation="selu", name="c1")(img)
    c2 = layers.Conv2D(3, 2, strides=2, dilation_rate=1, use_bias=False, name="c2")(c1)
    p1 = layers.AveragePooling2D(2, name="avgpool")(c1)
    p2 = layers.MaxPooling2D(2, strides=1, padding="same", name="maxpool")(c1)
    g1 = layers.GlobalMaxPooling2D(name="gmax2d")(p2)
    g2 = layers.GlobalAveragePooling2D(name="gavg2d")(p1)
    seq = layers.Reshape((9, 4), name="reshape")(layers.Flatten(name="flat")(p1))
    g3 = layers.GlobalMaxPooling1D(name="gmax1d")(seq)
    g4 = layers.GlobalAveragePooling1D(name="gavg1d")(seq)
    g5 = layers.Dense(4, name="from_c2")(layers.Flatten(name="flat2")(c2))
    m1 = layers.Add(name="add")([g1, g2])
    m2 = layers.Multiply(name="mul")([g3, g4])
    m3 = layers.Average(name="avg")([g1, g2, g3])
    m4 = layers.Maximum(name="max")([m1, m2])
    m5 = layers.Minimum(name="min")([m3, g5])
    cat = layers.Concatenate(name="cat")([m1, m2, m3, m4, m5])
    acts = [
        "softplus",
        "softsign",
        "gelu",
        "mish",
        "swish",
        "silu",
        "relu6",
        "log_softmax",
        "elu",
        "tanh",
        "sigmoid",
        "linear",
        "relu",
        "selu",
        "softmax",
    ]
    heads = [layers.Dense(3, activation=a, name=f"act_{a}")(cat) for a in acts]
    heads.append(layers.Activation("tanh", name="act_layer")(layers.Dense(3, name="pre_act")(cat)))
    h = layers.Concatenate(name="heads")(heads)
    h = layers.BatchNormalization(name="bn", center=False)(h)
    out = layers.Dense(5, name="out")(h)
    model = keras.Model(img, out, name="zoo_cnn")
    bn = model.get_layer("bn")
    rng = np.random.default_rng(0)
    k = bn.moving_mean.shape[0]
    bn.set_weights([rng.uniform(0.5, 2, k), rng.normal(0, 1, k), rng.uniform(0.5, 2, k)])
    return model


def _zoo_rnn() -> keras.Model:
    tokens = keras.Input((7,), dtype="int32", name="tokens")
    e = layers.Embedding(12, 5, name="emb")(tokens)
    s = layers.LSTM(6, return_sequences=True, activation="relu", name="lstm_seq")(e)
    s = layers.GRU(4, reset_after=False, go_backwards=True, return_sequences=True, name="gru_back")(s)
    s = layers.LSTM(3, use_bias=False, unit_forget_bias=False, name="lstm_last")(s)
    return keras.Model(tokens, layers.Dense(2, activation="softmax", name="probs")(s), name="zoo_rnn")


def _zoo_seq_no_input() -> keras.Model:
    model = keras.Sequential(
        [
            layers.Dense(4, activation="relu", name="d1"),
            layers.Dropout(0.5, name="drop"),
            layers.Dense(2, name="d2"),
        ],
        name="built_seq",
    )
    model.build((None, 5))
    return model


def _zoo_masked() -> keras.Model:
    return keras.Sequential(
        [
            keras.Input((7,), dtype="int32", name="tokens"),
            layers.Embedding(12, 5, mask_zero=True, name="emb"),
            layers.LSTM(6, return_sequences=True, name="lstm"),
            layers.GRU(4, reset_after=False, name="gru"),
            layers.Dense(2, name="out"),
        ],
        name="masked",
    )


ZOO = {
    "zoo_cnn": (_zoo_cnn, (6, 6, 2), "float32"),
    "zoo_rnn": (_zoo_rnn, (7,), "int32"),
    "zoo_seq": (_zoo_seq_no_input, (5,), "float32"),
    "zoo_masked": (_zoo_masked, (7,), "int32"),
}


def test_zoo_models_in_node(tmp_path: Path) -> None:
    """Layers/activations not covered by the reference models, with random weights."""
    if _node() is None:
        pytest.skip("node or jsengine_ml/js/node_modules/@tensorflow/tfjs not available")
    keras.utils.set_random_seed(7)
    rng = np.random.default_rng(7)
    dirs = []
    for name, (make, shape, dtype) in ZOO.items():
        model = make()
        if dtype == "int32":
            x = rng.integers(0, 12, size=(16, *shape)).astype(np.int32)
            x[::2, -3:] = 0  # trailing padding for the masked model
        else:
            x = rng.normal(0, 1, size=(16, *shape)).astype(np.float32)
        y = np.asarray(model.predict(x, verbose=0), dtype=np.float32)
        d = tmp_path / name
        keras_to_tfjs(model, d)
        np.savez(d / "golden.npz", x=x, y=y)
        dirs.append(d)
    results = _run_node(dirs)
    for name in ZOO:
        assert results[name]["ok"] and results[name]["maxAbsError"] <= TOL, results[name]


# --------------------------------------------------------------------------- rejections


class Scale(layers.Layer):
    def call(self, x: Any) -> Any:
        return x * 2.0


def test_custom_layer_unsupported(tmp_path: Path) -> None:
    inp = keras.Input((3,))
    model = keras.Model(inp, layers.Dense(2)(Scale(name="my_scale")(inp)))
    with pytest.raises(UnsupportedLayerError) as info:
        keras_to_tfjs(model, tmp_path)
    msg = str(info.value)
    assert "my_scale" in msg and "Scale" in msg and "Dense" in msg and "LSTM" in msg


@pytest.mark.parametrize(
    ("layer", "cls"),
    [
        (layers.UnitNormalization(name="odd_layer"), "UnitNormalization"),  # no tfjs counterpart
        (layers.Subtract(name="odd_layer"), "Subtract"),
    ],  # tfjs 4.22 has no Subtract layer
)
def test_builtin_layer_unsupported(tmp_path: Path, layer: Any, cls: str) -> None:
    inp = keras.Input((4,))
    x = layer([inp, inp]) if cls == "Subtract" else layer(inp)
    model = keras.Model(inp, layers.Dense(2)(x))
    with pytest.raises(UnsupportedLayerError, match=rf"odd_layer.*{cls}"):
        keras_to_tfjs(model, tmp_path)
    assert not (tmp_path / "model.json").exists()


def test_subclassed_dense_unsupported(tmp_path: Path) -> None:
    class MyDense(layers.Dense):
        pass

    model = keras.Sequential([keras.Input((4,)), MyDense(2, name="mine")])
    with pytest.raises(UnsupportedLayerError, match="mine"):
        keras_to_tfjs(model, tmp_path)


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: keras.Sequential([keras.Input((5, 2)), layers.GRU(3)]), "reset_after"),
        (
            lambda: keras.Sequential([keras.Input((4,)), layers.Dense(2, activation="hard_sigmoid")]),
            "hard_sigmoid",
        ),
        (
            lambda: keras.Sequential([keras.Input((4,)), layers.Dense(2, activation="leaky_relu")]),
            "leaky_relu",
        ),
        (
            lambda: keras.Sequential([keras.Input((5, 2), batch_size=4), layers.LSTM(3, stateful=True)]),
            "stateful",
        ),
        (
            lambda: keras.Sequential(
                [keras.Input((1, 4, 4)), layers.Conv2D(2, 2, data_format="channels_first")]
            ),
            "data_format",
        ),
        (
            lambda: keras.Sequential([keras.Input((4,)), layers.Dense(2, dtype="mixed_float16")]),
            "mixed_float16",
        ),
    ],
)
def test_config_rejections(tmp_path: Path, make: Any, match: str) -> None:
    with pytest.raises(ExportError, match=match):
        keras_to_tfjs(make(), tmp_path)


def test_functional_mask_zero_rejected(tmp_path: Path) -> None:
    tokens = keras.Input((5,), dtype="int32")
    model = keras.Model(tokens, layers.LSTM(2)(layers.Embedding(9, 3, mask_zero=True)(tokens)))
    with pytest.raises(UnsupportedLayerError, match="mask_zero"):
        keras_to_tfjs(model, tmp_path)


def test_nested_model_rejected(tmp_path: Path) -> None:
    inner = keras.Sequential([keras.Input((4,)), layers.Dense(3)], name="inner")
    inp = keras.Input((4,))
    model = keras.Model(inp, layers.Dense(2)(inner(inp)))
    with pytest.raises(ExportError, match="nested"):
        keras_to_tfjs(model, tmp_path)


def test_bad_inputs(tmp_path: Path) -> None:
    with pytest.raises(ExportError, match="no such model file"):
        keras_to_tfjs(tmp_path / "missing.keras", tmp_path / "out")
    with pytest.raises(ExportError, match=r"keras\.Model"):
        keras_to_tfjs(object(), tmp_path / "out")
    with pytest.raises(ExportError, match="shard_size_bytes"):
        keras_to_tfjs(REF / "wine" / "model.keras", tmp_path / "out", shard_size_bytes=0)
