"""Tests of the Keras 3 -> TF.js Layers exporter (jsengine_ml.export), run under KERAS_BACKEND=numpy.

When node and the bundled tfjs 4.22 node_modules are present, the fresh exports are loaded in tfjs
(scripts/verify_reference_models_node.js) and must reproduce the golden outputs within 1e-5.

Every supported layer type is also exported in seeded random configurations with random weights and
run by tfjs 4.22 (through jsengine_ml on QuickJS, or in node for several inputs / outputs); what tfjs
refuses or computes otherwise is exported all the same and the refusal / difference is asserted.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zlib
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

if "keras" not in sys.modules:
    os.environ["KERAS_BACKEND"] = "numpy"
keras = pytest.importorskip("keras")

import jsengine_ml  # noqa: E402
from jsengine_ml.errors import (  # noqa: E402
    BackendUnavailableError,
    ExportError,
    JSEngineMLError,
    UnsupportedLayerError,
)
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


def _golden_xy(golden: Any) -> tuple[Any, Any]:
    """x / y of a one-input, one-output model; the lists x_<name> / y_<name> of the others."""
    if "x" in golden:
        return golden["x"], golden["y"]
    return ([golden[k] for k in golden.files if k.startswith("x_")],
            [golden[k] for k in golden.files if k.startswith("y_")])


@pytest.mark.parametrize("name", REFERENCE_MODELS)
def test_reference_files(name: str) -> None:
    d = REF / name
    ref = json.loads((d / "reference.json").read_text())
    golden = np.load(d / "golden.npz")
    xs, ys = _golden_xy(golden)
    x, y = (xs[0], ys[0]) if isinstance(xs, list) else (xs, ys)
    if isinstance(xs, list):
        assert [f"x_{i['name']}" for i in ref["inputs"]] == [k for k in golden.files if k.startswith("x_")]
    assert ref["name"] == name
    assert y.dtype == np.float32 and y.ndim == 2 and len(x) == len(y) >= 32
    assert x.dtype == (np.int32 if ref["input_dtype"] == "int32" else np.float32)
    assert ref["input_shape"] == [None, *x.shape[1:]]
    assert ref["output_shape"] == [None, y.shape[1]]
    assert sum(p.stat().st_size for p in d.iterdir()) < 200 * 1024


@pytest.mark.parametrize("name", REFERENCE_MODELS)
def test_keras_predict_matches_golden(name: str) -> None:
    model = keras.models.load_model(REF / name / "model.keras", compile=False)
    xs, ys = _golden_xy(np.load(REF / name / "golden.npz"))
    out = model.predict(xs, verbose=0)
    for got, want in zip(out if isinstance(ys, list) else [out], ys if isinstance(ys, list) else [ys], strict=True):
        np.testing.assert_allclose(np.asarray(got), want, atol=TOL, rtol=0)


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
        (layers.Identity(name="odd_layer"), "Identity"),  # no tfjs counterpart either
    ],
)
def test_builtin_layer_unsupported(tmp_path: Path, layer: Any, cls: str) -> None:
    inp = keras.Input((4,))
    x = layer(inp)
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


# --------------------------------------------------------------------------- every layer type vs tfjs 4.22
#
# Seeded random configurations (SEEDS per layer type), random weights (BatchNormalization with
# non-trivial statistics), exported and run by tfjs 4.22: single-input single-output models through
# jsengine_ml.load(..., runtime="tfjs") on QuickJS, the others in node. Both must match Keras'
# model.predict within TOL (relative and absolute).

#: Keras activations tfjs 4.22 computes as Keras 3 does (hard_sigmoid differs: see its own test).
ACTIVATIONS = [
    "relu",
    "relu6",
    "elu",
    "selu",
    "sigmoid",
    "tanh",
    "softmax",
    "log_softmax",
    "softplus",
    "softsign",
    "swish",
    "silu",
    "gelu",
    "mish",
    "linear",
]
SEEDS = (0, 1, 2, 3)
N_ROWS = 5
VOCAB = 10  # integer inputs are drawn from [0, VOCAB); every Embedding has input_dim >= VOCAB

Builder = Callable[[np.random.Generator], keras.Model]


def _int(rng: np.random.Generator, lo: int, hi: int) -> int:
    return int(rng.integers(lo, hi + 1))


def _pick(rng: np.random.Generator, options: Sequence[Any]) -> Any:
    return options[int(rng.integers(len(options)))]


def _flag(rng: np.random.Generator) -> bool:
    return bool(rng.integers(2))


def _seq(shape: tuple[int, ...], *stack: Any, dtype: str = "float32") -> keras.Model:
    return keras.Sequential([keras.Input(shape, dtype=dtype), *stack])


def _geometry(rng: np.random.Generator, rank: int, *, dilation: bool = True) -> dict[str, Any]:
    """Kernel, strides or dilation (tfjs needs one of them to be 1) and padding of a convolution."""
    strided = not dilation or _flag(rng)
    ones = (1,) * rank
    return {
        "kernel_size": tuple(_int(rng, 1, 3) for _ in range(rank)),
        "strides": tuple(_int(rng, 1, 2) for _ in range(rank)) if strided else ones,
        "dilation_rate": ones if strided else tuple(_int(rng, 1, 2) for _ in range(rank)),
        "padding": _pick(rng, ["valid", "same"]),
    }


def _spatial(rng: np.random.Generator, rank: int) -> tuple[int, ...]:
    return (*(_int(rng, 7, 9) for _ in range(rank)), _int(rng, 1, 3))


def _dense(rng: np.random.Generator) -> keras.Model:
    shape = _pick(rng, [(_int(rng, 2, 6),), (3, _int(rng, 2, 4))])
    return _seq(shape, layers.Dense(_int(rng, 1, 5), activation=_pick(rng, ACTIVATIONS), use_bias=_flag(rng)))


def _conv(cls: Any, rank: int) -> Builder:
    def build(rng: np.random.Generator) -> keras.Model:
        layer = cls(_int(rng, 1, 4), **_geometry(rng, rank), activation=_pick(rng, ACTIVATIONS), use_bias=_flag(rng))
        return _seq(_spatial(rng, rank), layer)

    return build


def _depthwise(rng: np.random.Generator) -> keras.Model:
    geometry = _geometry(rng, 2, dilation=False)  # tfjs ignores a depthwise dilation: refused
    del geometry["dilation_rate"]
    layer = layers.DepthwiseConv2D(
        **geometry, depth_multiplier=_int(rng, 1, 2), activation=_pick(rng, ACTIVATIONS), use_bias=_flag(rng)
    )
    return _seq(_spatial(rng, 2), layer)


def _separable(rng: np.random.Generator) -> keras.Model:
    layer = layers.SeparableConv2D(
        _int(rng, 1, 4),
        **_geometry(rng, 2),
        depth_multiplier=_int(rng, 1, 2),
        activation=_pick(rng, ACTIVATIONS),
        use_bias=_flag(rng),
    )
    return _seq(_spatial(rng, 2), layer)


def _pooling(cls: Any, rank: int) -> Builder:
    def build(rng: np.random.Generator) -> keras.Model:
        pool = tuple(_int(rng, 1, 3) for _ in range(rank))
        strides = _pick(rng, [None, tuple(_int(rng, 1, 2) for _ in range(rank))])
        return _seq(_spatial(rng, rank), cls(pool, strides=strides, padding=_pick(rng, ["valid", "same"])))

    return build


def _global_pooling(cls: Any, rank: int) -> Builder:
    def build(rng: np.random.Generator) -> keras.Model:
        return _seq(_spatial(rng, rank), cls(keepdims=_flag(rng)))

    return build


def _flatten(rng: np.random.Generator) -> keras.Model:
    return _seq(_pick(rng, [(3, 2), (2, 3, 2), (2, 2, 2, 2)]), layers.Flatten())


def _reshape(rng: np.random.Generator) -> keras.Model:
    target = _pick(rng, [(24,), (6, 4), (4, -1), (2, 3, 2, 2), (-1, 2), (3, 8)])
    return _seq((2, 3, 4), layers.Reshape(target))


def _permute(rng: np.random.Generator) -> keras.Model:
    shape = _pick(rng, [(2, 3), (2, 3, 4)])
    dims = tuple(int(d) + 1 for d in rng.permutation(len(shape)))
    return _seq(shape, layers.Permute(dims))


def _repeat_vector(rng: np.random.Generator) -> keras.Model:
    return _seq((_int(rng, 1, 4),), layers.RepeatVector(_int(rng, 1, 4)))


def _batch_norm(rng: np.random.Generator) -> keras.Model:
    shape = _pick(rng, [(4,), (3, 4), (4, 3, 2)])
    axis = _pick(rng, [-1, len(shape)])  # the last axis (tfjs gets any other wrong: refused)
    layer = layers.BatchNormalization(
        axis=axis, epsilon=_pick(rng, [1e-3, 1e-2, 0.3]), center=_flag(rng), scale=_flag(rng)
    )
    return _seq(shape, layer)


def _layer_norm(rng: np.random.Generator) -> keras.Model:
    shape = _pick(rng, [(5,), (3, 4), (2, 3, 4)])
    axis = _pick(rng, [-1, [1, 2]]) if len(shape) == 3 else -1
    layer = layers.LayerNormalization(
        axis=axis, epsilon=_pick(rng, [1e-3, 1e-2, 0.3]), center=_flag(rng), scale=_flag(rng)
    )
    return _seq(shape, layer)


def _dropout(cls: Any, shape: tuple[int, ...]) -> Builder:
    def build(rng: np.random.Generator) -> keras.Model:
        return _seq(shape, layers.Dense(_int(rng, 1, 3)), cls(float(rng.uniform(0.1, 0.9))))

    return build


def _activation(name: str) -> Builder:
    def build(rng: np.random.Generator) -> keras.Model:
        return _seq(_pick(rng, [(6,), (3, 4)]), layers.Activation(name))

    return build


def _leaky_relu(rng: np.random.Generator) -> keras.Model:
    return _seq((3, 4), layers.LeakyReLU(negative_slope=float(rng.uniform(0.01, 0.5))))


def _prelu(rng: np.random.Generator) -> keras.Model:
    shape = _pick(rng, [(5,), (3, 4), (2, 3, 2)])
    shared = _pick(rng, [None, [1], list(range(1, len(shape)))]) if len(shape) > 1 else None
    return _seq(shape, layers.PReLU(shared_axes=shared))


def _relu(rng: np.random.Generator) -> keras.Model:
    return _seq((6,), layers.ReLU(max_value=_pick(rng, [None, float(rng.uniform(0.5, 2))])))


def _elu(rng: np.random.Generator) -> keras.Model:
    return _seq(_pick(rng, [(6,), (2, 3)]), layers.ELU())


def _softmax(rng: np.random.Generator) -> keras.Model:
    shape = _pick(rng, [(6,), (2, 3)])
    return _seq(shape, layers.Softmax(axis=_pick(rng, [-1, len(shape)])))  # tfjs: the last axis only


def _embedding(rng: np.random.Generator) -> keras.Model:
    layer = layers.Embedding(_int(rng, VOCAB, VOCAB + 3), _int(rng, 1, 4))
    return _seq((_int(rng, 1, 6),), layer, dtype="int32")


def _embedding_masked(rng: np.random.Generator) -> keras.Model:
    rnn = _rnn_layer(rng, _pick(rng, [layers.SimpleRNN, layers.LSTM, layers.GRU]), go_backwards=False)
    if _flag(rng):
        rnn = layers.Bidirectional(rnn, merge_mode=_pick(rng, ["concat", "sum", "mul", "ave"]))
    return _seq((6,), layers.Embedding(VOCAB, 3, mask_zero=True), rnn, dtype="int32")


def _rnn_layer(rng: np.random.Generator, cls: Any, *, go_backwards: bool = True) -> Any:
    kwargs: dict[str, Any] = {
        "units": _int(rng, 1, 4),
        "activation": _pick(rng, ["tanh", "relu", "sigmoid"]),
        "use_bias": _flag(rng),
        "return_sequences": _flag(rng),
        "go_backwards": go_backwards and _flag(rng),
    }
    if cls is not layers.SimpleRNN:
        kwargs["recurrent_activation"] = _pick(rng, ["sigmoid", "tanh"])
    if cls is layers.LSTM:
        kwargs["unit_forget_bias"] = _flag(rng)
    if cls is layers.GRU:
        kwargs["reset_after"] = False
    return cls(**kwargs)


def _rnn(cls: Any) -> Builder:
    def build(rng: np.random.Generator) -> keras.Model:
        return _seq((_int(rng, 3, 6), _int(rng, 1, 3)), _rnn_layer(rng, cls))

    return build


def _bidirectional(merge_mode: str | None) -> Builder:
    def build(rng: np.random.Generator) -> keras.Model:
        # Keras 3.15 cannot build Bidirectional around a go_backwards=True layer (it runs both backwards)
        inner = _rnn_layer(rng, _pick(rng, [layers.SimpleRNN, layers.LSTM, layers.GRU]), go_backwards=False)
        inp = keras.Input((_int(rng, 3, 5), _int(rng, 1, 3)))
        out = layers.Bidirectional(inner, merge_mode=merge_mode)(inp)
        if merge_mode is None:  # two outputs, joined again to keep one model output
            out = layers.Concatenate()(out)
        return keras.Model(inp, out)

    return build


#: TimeDistributed cases: wrapped layer -> (its factory, the per-step input shape).
def _padding(rng: np.random.Generator) -> str:
    return str(_pick(rng, ["valid", "same"]))


TIME_DISTRIBUTED: dict[str, tuple[Callable[[np.random.Generator], Any], tuple[int, ...]]] = {
    "Dense": (lambda rng: layers.Dense(_int(rng, 1, 3), activation=_pick(rng, ACTIVATIONS)), (4,)),
    "Activation": (lambda rng: layers.Activation(_pick(rng, ACTIVATIONS)), (3,)),
    "Dropout": (lambda rng: layers.Dropout(0.5), (3,)),
    "Flatten": (lambda rng: layers.Flatten(), (2, 3)),
    "RepeatVector": (lambda rng: layers.RepeatVector(_int(rng, 1, 3)), (3,)),
    "Conv1D": (lambda rng: layers.Conv1D(2, **_geometry(rng, 1)), (6, 2)),
    "Conv2D": (lambda rng: layers.Conv2D(2, **_geometry(rng, 2)), (5, 5, 2)),
    "DepthwiseConv2D": (lambda rng: layers.DepthwiseConv2D(2, padding=_padding(rng)), (4, 4, 2)),
    "SeparableConv2D": (lambda rng: layers.SeparableConv2D(2, 2, padding=_padding(rng)), (4, 4, 2)),
    "MaxPooling1D": (lambda rng: layers.MaxPooling1D(_int(rng, 1, 3), padding=_padding(rng)), (5, 2)),
    "AveragePooling1D": (lambda rng: layers.AveragePooling1D(_int(rng, 1, 3), padding=_padding(rng)), (5, 2)),
    "MaxPooling2D": (lambda rng: layers.MaxPooling2D(_int(rng, 1, 2), padding=_padding(rng)), (4, 5, 2)),
    "AveragePooling2D": (lambda rng: layers.AveragePooling2D(_int(rng, 1, 2), padding=_padding(rng)), (4, 5, 2)),
    "GlobalAveragePooling1D": (lambda rng: layers.GlobalAveragePooling1D(), (4, 3)),
    "GlobalMaxPooling1D": (lambda rng: layers.GlobalMaxPooling1D(), (4, 3)),
    "GlobalAveragePooling2D": (lambda rng: layers.GlobalAveragePooling2D(), (3, 3, 2)),
    "GlobalMaxPooling2D": (lambda rng: layers.GlobalMaxPooling2D(), (3, 3, 2)),
    "BatchNormalization": (lambda rng: layers.BatchNormalization(center=_flag(rng)), (3,)),
    "LayerNormalization": (lambda rng: layers.LayerNormalization(scale=_flag(rng)), (4,)),
    "ReLU": (lambda rng: layers.ReLU(max_value=_pick(rng, [None, 1.0])), (3,)),
    "LeakyReLU": (lambda rng: layers.LeakyReLU(negative_slope=0.1), (3,)),
    "PReLU": (lambda rng: layers.PReLU(), (3,)),
    "ELU": (lambda rng: layers.ELU(), (3,)),
    "Softmax": (lambda rng: layers.Softmax(), (3,)),
}


def _time_distributed(kind: str) -> Builder:
    def build(rng: np.random.Generator) -> keras.Model:
        make, shape = TIME_DISTRIBUTED[kind]
        return _seq((_int(rng, 2, 3), *shape), layers.TimeDistributed(make(rng)))

    return build


def _merge(cls: Any) -> Builder:
    def build(rng: np.random.Generator) -> keras.Model:
        shape = _pick(rng, [(4,), (2, 4)])
        inp = keras.Input(shape)
        width = _int(rng, 1, 3)
        branches = [layers.Dense(width, activation="tanh")(inp) for _ in range(_int(rng, 2, 3))]
        if cls is layers.Concatenate:
            merged = cls(axis=_pick(rng, [-1, len(shape)] if len(shape) == 1 else [-1, 1, 2]))(branches)
        else:
            merged = cls()(branches)
        return keras.Model(inp, merged)

    return build


def _branches(rng: np.random.Generator) -> keras.Model:
    """One input, a DAG of conv / pooling / dense branches joined by several merge layers."""
    inp = keras.Input((8, 8, 2))
    a = layers.Conv2D(3, 3, padding="same", activation="relu")(inp)
    b = layers.DepthwiseConv2D(3, padding="same")(inp)
    b = layers.Conv2D(3, 1)(b)
    c = layers.Add()([a, b])
    c = layers.BatchNormalization()(c)
    d = layers.MaxPooling2D(2)(c)
    e = layers.AveragePooling2D(2)(c)
    f = layers.Concatenate()([d, e, layers.SeparableConv2D(2, 3, strides=2, padding="same")(c)])
    g = layers.GlobalAveragePooling2D()(f)
    h = layers.GlobalMaxPooling2D()(f)
    out = layers.Dense(_int(rng, 2, 4), activation=_pick(rng, ACTIVATIONS))(layers.Maximum()([g, h]))
    return keras.Model(inp, out)


CASES: dict[str, Builder] = {
    "Dense": _dense,
    "Conv1D": _conv(layers.Conv1D, 1),
    "Conv2D": _conv(layers.Conv2D, 2),
    "DepthwiseConv2D": _depthwise,
    "SeparableConv2D": _separable,
    "MaxPooling1D": _pooling(layers.MaxPooling1D, 1),
    "AveragePooling1D": _pooling(layers.AveragePooling1D, 1),
    "MaxPooling2D": _pooling(layers.MaxPooling2D, 2),
    "AveragePooling2D": _pooling(layers.AveragePooling2D, 2),
    "GlobalMaxPooling1D": _global_pooling(layers.GlobalMaxPooling1D, 1),
    "GlobalAveragePooling1D": _global_pooling(layers.GlobalAveragePooling1D, 1),
    "GlobalMaxPooling2D": _global_pooling(layers.GlobalMaxPooling2D, 2),
    "GlobalAveragePooling2D": _global_pooling(layers.GlobalAveragePooling2D, 2),
    "Flatten": _flatten,
    "Reshape": _reshape,
    "Permute": _permute,
    "RepeatVector": _repeat_vector,
    "BatchNormalization": _batch_norm,
    "LayerNormalization": _layer_norm,
    "Dropout": _dropout(layers.Dropout, (4,)),
    "SpatialDropout1D": _dropout(layers.SpatialDropout1D, (5, 3)),
    "SpatialDropout2D": _dropout(layers.SpatialDropout2D, (4, 4, 2)),
    **{f"Activation-{name}": _activation(name) for name in ACTIVATIONS},
    "LeakyReLU": _leaky_relu,
    "PReLU": _prelu,
    "ReLU": _relu,
    "ELU": _elu,
    "Softmax": _softmax,
    "Embedding": _embedding,
    "Embedding-mask_zero": _embedding_masked,
    "SimpleRNN": _rnn(layers.SimpleRNN),
    "LSTM": _rnn(layers.LSTM),
    "GRU": _rnn(layers.GRU),
    **{f"Bidirectional-{mode}": _bidirectional(mode) for mode in ("concat", "sum", "mul", "ave", None)},
    **{f"TimeDistributed-{kind}": _time_distributed(kind) for kind in TIME_DISTRIBUTED},
    "Concatenate": _merge(layers.Concatenate),
    "Add": _merge(layers.Add),
    "Multiply": _merge(layers.Multiply),
    "Average": _merge(layers.Average),
    "Maximum": _merge(layers.Maximum),
    "Minimum": _merge(layers.Minimum),
    "Functional-branches": _branches,
}


def _randomize(model: keras.Model, rng: np.random.Generator) -> None:
    """Random weights for every layer; BatchNormalization gets non-trivial moving statistics."""
    for layer in model.layers:
        values = []
        for var in layer.weights:
            shape = tuple(var.shape)
            if var.name == "moving_variance":
                value = rng.uniform(0.5, 2.0, shape)
            elif var.name == "gamma":
                value = rng.uniform(0.5, 1.5, shape)
            elif var.name == "embeddings":
                value = rng.normal(0, 1, shape)
            else:
                value = rng.normal(0, 0.5, shape)
            values.append(value.astype(np.float32))
        if values:
            layer.set_weights(values)


def _inputs(model: keras.Model, rng: np.random.Generator, n: int = N_ROWS) -> list[np.ndarray]:
    xs = []
    for tensor in model.inputs:
        shape = (n, *tensor.shape[1:])
        if "int" in str(tensor.dtype):
            xs.append(rng.integers(0, VOCAB, size=shape).astype(np.int32))
        else:
            xs.append(rng.normal(0, 1.5, size=shape).astype(np.float32))
    return xs


def _keras_outputs(model: keras.Model, xs: list[np.ndarray]) -> list[np.ndarray]:
    y = model.predict(xs[0] if len(xs) == 1 else xs, verbose=0)
    return [np.asarray(v, dtype=np.float32) for v in (y if isinstance(y, (list, tuple)) else [y])]


def _make(builder: Builder, seed: int, name: str = "") -> tuple[keras.Model, list[np.ndarray]]:
    """The model of one case with random weights, and its inputs; the generator is salted with the name."""
    keras.utils.set_random_seed(seed)
    rng = np.random.default_rng([seed, zlib.crc32(name.encode())])
    model = builder(rng)
    _randomize(model, rng)
    return model, _inputs(model, rng)


def _export(model: keras.Model, out_dir: Path) -> dict[str, Any]:
    """Export and check what every artifact must carry; return its model.json."""
    model_json = json.loads(keras_to_tfjs(model, out_dir).read_text())
    topology = model_json["modelTopology"]
    assert topology["keras_version"] == keras.__version__
    assert int(topology["keras_version"].split(".")[0]) == 3
    return model_json


@pytest.fixture(scope="module")
def quickjs() -> Iterator[Any]:
    """One QuickJS engine with tfjs 4.22 for every single-input model of this module."""
    if not TFJS.is_dir():
        pytest.skip("jsengine_ml/js/node_modules/@tensorflow/tfjs not installed")
    try:
        engine = jsengine_ml.create_engine("quickjs")
    except BackendUnavailableError as exc:
        pytest.skip(str(exc))
    yield engine
    engine.close()


def _tfjs_predict(engine: Any, out_dir: Path, x: np.ndarray) -> np.ndarray:
    """tfjs 4.22's prediction through jsengine_ml (a 2-D matrix in; input_shape gives the rest)."""
    model = jsengine_ml.load(out_dir, engine=engine, runtime="tfjs", warmup=False)
    try:
        return model.predict(x.reshape(len(x), -1))
    finally:
        model.close()


def _assert_close(got: np.ndarray, want: np.ndarray) -> None:
    np.testing.assert_allclose(got, want.reshape(got.shape), rtol=TOL, atol=TOL)


@pytest.mark.parametrize(("name", "seed"), [(name, seed) for name in CASES for seed in SEEDS])
def test_layer_types_match_tfjs(name: str, seed: int, quickjs: Any, tmp_path: Path) -> None:
    model, xs = _make(CASES[name], seed, name)
    (want,) = _keras_outputs(model, xs)
    _export(model, tmp_path)
    got = _tfjs_predict(quickjs, tmp_path, xs[0])
    assert got.shape == (len(want), want[0].size)
    _assert_close(got, want)


# --------------------------------------------------------------------------- several inputs / outputs (node)

NODE_PREDICT_JS = r"""
'use strict';
// argv: tfjs module path, then directories holding model.json, shards and inputs.json (+ .bin inputs).
// Prints one JSON line: [{dir, outputs: [{shape, data}]} | {dir, error}].
const fs = require('fs');
const path = require('path');
const tf = require(process.argv[2]);

function bytes(file) {
  const b = fs.readFileSync(file);
  return b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength);
}

async function run(dir) {
  const modelJson = JSON.parse(fs.readFileSync(path.join(dir, 'model.json'), 'utf8'));
  const weightSpecs = [];
  const parts = [];
  for (const group of modelJson.weightsManifest) {
    weightSpecs.push(...group.weights);
    for (const p of group.paths) parts.push(fs.readFileSync(path.join(dir, p)));
  }
  const all = Buffer.concat(parts);
  const weightData = all.buffer.slice(all.byteOffset, all.byteOffset + all.byteLength);
  const model = await tf.loadLayersModel(
    tf.io.fromMemory({modelTopology: modelJson.modelTopology, weightSpecs, weightData}));
  const xs = JSON.parse(fs.readFileSync(path.join(dir, 'inputs.json'), 'utf8')).map(s => {
    const data = s.dtype === 'int32' ? new Int32Array(bytes(path.join(dir, s.file)))
                                     : new Float32Array(bytes(path.join(dir, s.file)));
    return tf.tensor(data, s.shape, s.dtype);
  });
  let ys = model.predict(xs.length === 1 ? xs[0] : xs);
  if (!Array.isArray(ys)) ys = [ys];
  return ys.map(y => ({shape: y.shape, data: Array.from(y.dataSync())}));
}

(async () => {
  const results = [];
  for (const dir of process.argv.slice(3)) {
    try {
      results.push({dir, outputs: await run(dir)});
    } catch (err) {
      results.push({dir, error: String(err && err.stack || err)});
    }
  }
  process.stdout.write('RESULTS ' + JSON.stringify(results) + '\n');
})();
"""


def _node_predict(cases: dict[str, tuple[Path, list[np.ndarray]]], tmp_path: Path) -> dict[str, Any]:
    """Run exported models in tfjs 4.22 under node; name -> list of outputs, or the error text."""
    node = shutil.which("node")
    if node is None or not TFJS.is_dir():
        pytest.skip("node or jsengine_ml/js/node_modules/@tensorflow/tfjs not available")
    for out_dir, xs in cases.values():
        specs = []
        for i, x in enumerate(xs):
            (out_dir / f"x{i}.bin").write_bytes(np.ascontiguousarray(x).astype(x.dtype.newbyteorder("<")).tobytes())
            specs.append({"file": f"x{i}.bin", "shape": list(x.shape), "dtype": str(x.dtype)})
        (out_dir / "inputs.json").write_text(json.dumps(specs))
    script = tmp_path / "predict.js"
    script.write_text(NODE_PREDICT_JS)
    dirs = [str(d) for d, _ in cases.values()]
    proc = subprocess.run(
        [node, str(script), str(TFJS), *dirs], check=False, capture_output=True, text=True, timeout=300
    )
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULTS ")]
    assert lines, f"node produced no results: {proc.stdout}\n{proc.stderr}"
    by_dir = {r["dir"]: r for r in json.loads(lines[-1][len("RESULTS ") :])}
    out: dict[str, Any] = {}
    for name, (d, _) in cases.items():
        r = by_dir[str(d)]
        if "error" in r:
            out[name] = r["error"]
        else:
            out[name] = [np.asarray(o["data"], dtype=np.float32).reshape(o["shape"]) for o in r["outputs"]]
    return out


def _two_in_two_out(rng: np.random.Generator) -> keras.Model:
    """Two inputs (a sequence and a vector), two outputs; branches meet in several merge layers."""
    seq = keras.Input((5, 3), name="seq")
    vec = keras.Input((4,), name="vec")
    s = layers.Conv1D(4, 2, padding="same", activation="relu")(seq)
    s = layers.LSTM(3, return_sequences=_flag(rng))(s)
    if len(s.shape) == 3:
        s = layers.GlobalAveragePooling1D()(s)
    v = layers.Dense(3, activation=_pick(rng, ACTIVATIONS))(vec)
    joined = layers.Concatenate()([s, v, layers.Multiply()([s, v])])
    out1 = layers.Dense(2, activation="softmax", name="probs")(joined)
    out2 = layers.Add(name="sum")([layers.Dense(3)(joined), v])
    return keras.Model([seq, vec], [out1, out2])


def _three_in_shared(rng: np.random.Generator) -> keras.Model:
    """Three inputs through one shared Dense layer (several inbound nodes), three outputs, int input."""
    a, b = keras.Input((4,), name="a"), keras.Input((4,), name="b")
    tokens = keras.Input((3,), dtype="int32", name="tokens")
    shared = layers.Dense(_int(rng, 2, 4), activation="tanh", name="shared")
    ha, hb = shared(a), shared(b)
    e = layers.Flatten()(layers.Embedding(VOCAB, 2)(tokens))
    m = layers.Average()([ha, hb])
    mx = layers.Maximum()([ha, hb])
    mn = layers.Minimum()([ha, hb])
    out = layers.Dense(3)(layers.Concatenate()([m, mx, mn, e]))
    return keras.Model([a, b, tokens], [out, mx, layers.Reshape((1, -1))(mn)])


def _keepdims_graph(rng: np.random.Generator) -> keras.Model:
    """A keepdims global pooling used twice (two inbound nodes), i.e. two rewritten call chains."""
    x1, x2 = keras.Input((6, 6, 2), name="x1"), keras.Input((6, 6, 2), name="x2")
    pool = layers.GlobalMaxPooling2D(keepdims=True, name="gpool")
    p1, p2 = pool(x1), pool(layers.Conv2D(2, 3, padding="same")(x2))
    return keras.Model([x1, x2], [layers.Add()([p1, p2]), p2])


GRAPHS: dict[str, Builder] = {
    "two_in_two_out": _two_in_two_out,
    "three_in_shared": _three_in_shared,
    "keepdims_graph": _keepdims_graph,
}


def test_multi_io_graphs_match_tfjs(tmp_path: Path) -> None:
    """Functional graphs with several inputs and outputs, seeded, run by tfjs 4.22 in node."""
    cases: dict[str, tuple[Path, list[np.ndarray]]] = {}
    expected: dict[str, list[np.ndarray]] = {}
    for name, builder in GRAPHS.items():
        for seed in SEEDS:
            key = f"{name}-{seed}"
            model, xs = _make(builder, seed, key)
            expected[key] = _keras_outputs(model, xs)
            _export(model, tmp_path / key)
            cases[key] = (tmp_path / key, xs)
    results = _node_predict(cases, tmp_path)
    for key, want in expected.items():
        got = results[key]
        assert not isinstance(got, str), f"{key}: {got}"
        assert [g.shape for g in got] == [w.shape for w in want], key
        for g, w in zip(got, want, strict=True):
            _assert_close(g, w)


# --------------------------------------------------------------------------- what tfjs refuses or computes otherwise


def _subtract(rng: np.random.Generator) -> keras.Model:
    inp = keras.Input((3,))
    return keras.Model(inp, layers.Subtract()([layers.Dense(2)(inp), layers.Dense(2)(inp)]))


#: Exported for runtimes that read the topology themselves; tfjs 4.22 refuses them with this message.
TFJS_REFUSES: dict[str, tuple[Builder, str]] = {
    "GRU-reset_after": (
        lambda rng: _seq((4, 2), layers.GRU(3, reset_after=True, return_sequences=_flag(rng))),
        "GRUCell does not support reset_after parameter set to true",
    ),
    "Bidirectional-GRU-reset_after": (
        lambda rng: _seq((4, 2), layers.Bidirectional(layers.GRU(3, reset_after=True))),
        "GRUCell does not support reset_after parameter set to true",
    ),
    "Conv1D-causal": (
        lambda rng: _seq((6, 2), layers.Conv1D(2, 3, padding="causal", dilation_rate=_int(rng, 1, 2))),
        "CAUSAL padding mode in conv1dWithBias is not implemented",
    ),
    "Subtract": (_subtract, "Unknown layer: Subtract"),
    "SeparableConv1D": (lambda rng: _seq((6, 2), layers.SeparableConv1D(2, 3)), "Unknown layer: SeparableConv1D"),
    "ELU-alpha": (lambda rng: _seq((3,), layers.ELU(alpha=0.5)), r"Non-default alpha value \(0.5\)"),
    "Softmax-non-last-axis": (
        lambda rng: _seq((3, 4), layers.Softmax(axis=1)),
        "Softmax along a non-last dimension is not yet supported",
    ),
}


@pytest.mark.parametrize("name", TFJS_REFUSES)
def test_exported_but_tfjs_refuses(name: str, quickjs: Any, tmp_path: Path) -> None:
    builder, message = TFJS_REFUSES[name]
    model, xs = _make(builder, 0, name)
    _export(model, tmp_path)
    with pytest.raises(JSEngineMLError, match=message):
        _tfjs_predict(quickjs, tmp_path, xs[0])


def test_gru_reset_after_export(tmp_path: Path) -> None:
    """reset_after=True is kept, with Keras 3's (2, 3 * units) bias: input and recurrent biases."""
    inner = layers.GRU(2, reset_after=True, return_sequences=True, name="inner")
    model = _seq((4, 2), layers.Bidirectional(inner, name="bi"), layers.GRU(3, name="g"))
    model_json = _export(model, tmp_path)
    cfgs = {la["config"]["name"]: la["config"] for la in model_json["modelTopology"]["config"]["layers"]}
    assert cfgs["g"]["reset_after"] is True
    assert cfgs["bi"]["layer"]["config"]["reset_after"] is True
    shapes = {w["name"]: w["shape"] for w in model_json["weightsManifest"][0]["weights"]}
    assert shapes["g/gru_cell/bias"] == [2, 9]
    assert shapes["bi/forward_inner/gru_cell/bias"] == shapes["bi/backward_inner/gru_cell/bias"] == [2, 6]


def test_hard_sigmoid_differs_in_tfjs(quickjs: Any, tmp_path: Path) -> None:
    """Keras 3: relu6(x + 3) / 6; tfjs 4.22 (like Keras 2): clip(0.2 x + 0.5, 0, 1). Exported all the same."""
    model = _seq((9,), layers.Activation("hard_sigmoid", name="hs"))
    x = np.linspace(-4, 4, 36, dtype=np.float32).reshape(4, 9)
    want = np.asarray(model.predict(x, verbose=0))
    np.testing.assert_allclose(want, np.clip(x / 6 + 0.5, 0, 1), atol=1e-6)
    model_json = _export(model, tmp_path)
    (act,) = [la for la in model_json["modelTopology"]["config"]["layers"] if la["config"]["name"] == "hs"]
    assert act["config"]["activation"] == "hard_sigmoid"
    assert model_json["modelTopology"]["keras_version"].startswith("3.")  # how a reader picks the Keras 3 form
    got = _tfjs_predict(quickjs, tmp_path, x)
    np.testing.assert_allclose(got, np.clip(0.2 * x + 0.5, 0, 1), atol=1e-6)
    assert np.abs(got - want).max() > 0.05


def test_every_export_records_keras_version(tmp_path: Path) -> None:
    """modelTopology.keras_version (the Keras that made the model) is in every artifact."""
    builders = {**CASES, **GRAPHS, **{name: b for name, (b, _) in TFJS_REFUSES.items()}}
    for name, builder in builders.items():
        model, _ = _make(builder, 0, name)
        topology = json.loads(keras_to_tfjs(model, tmp_path / name).read_text())["modelTopology"]
        assert topology["keras_version"] == keras.__version__, name
    for name in REFERENCE_MODELS:
        topology = json.loads((REF / name / "model.json").read_text())["modelTopology"]
        assert int(topology["keras_version"].split(".")[0]) == 3, name


# --------------------------------------------------------------------------- topology and weight names


def test_weight_names(tmp_path: Path) -> None:
    """The names tfjs looks weights up by (the runtime's topology reader relies on them)."""
    inp = keras.Input((4, 4, 2))
    x = layers.DepthwiseConv2D(2, name="dw")(inp)
    x = layers.Reshape((3, 6), name="rs")(x)
    x = layers.TimeDistributed(layers.Dense(2, name="inner_dense"), name="td")(x)
    x = layers.Bidirectional(layers.LSTM(2, return_sequences=True, name="l"), name="bi")(x)
    x = layers.SimpleRNN(2, return_sequences=True, name="rnn")(x)
    x = layers.TimeDistributed(layers.BatchNormalization(name="bn"), name="td_bn")(x)
    x = layers.PReLU(name="pr")(layers.LayerNormalization(name="ln")(layers.Flatten(name="fl")(x)))
    model = keras.Model(inp, x)
    model_json = _export(model, tmp_path)
    names = [w["name"] for w in model_json["weightsManifest"][0]["weights"]]
    rnn = ("kernel", "recurrent_kernel", "bias")
    assert names == [
        "dw/depthwise_kernel",
        "dw/bias",
        "td/kernel",
        "td/bias",
        *(f"bi/forward_l/lstm_cell/{w}" for w in rnn),
        *(f"bi/backward_l/lstm_cell/{w}" for w in rnn),
        *(f"rnn/simple_rnn_cell/{w}" for w in rnn),
        "td_bn/gamma",
        "td_bn/beta",
        "td_bn/moving_mean",
        "td_bn/moving_variance",
        "ln/gamma",
        "ln/beta",
        "pr/alpha",
    ]
    cfgs = {la["name"]: la for la in model_json["modelTopology"]["config"]["layers"]}
    assert cfgs["bi"]["config"]["layer"] == {"class_name": "LSTM", "config": cfgs["bi"]["config"]["layer"]["config"]}
    assert cfgs["bi"]["config"]["layer"]["config"]["name"] == "l"  # tfjs adds forward_ / backward_
    assert cfgs["td"]["config"]["layer"]["class_name"] == "Dense"


def test_rewritten_layers(tmp_path: Path) -> None:
    """keepdims pooling -> pooling + Reshape; SpatialDropout2D -> Dropout; negative_slope -> alpha; -1 resolved."""
    inp = keras.Input((4, 4, 3), name="input_layer")
    x = layers.Dense(3, name="gap_pool")(inp)  # takes the name the added pooling layer would get
    x = layers.SpatialDropout2D(0.3, name="sd")(x)
    x = layers.GlobalAveragePooling2D(keepdims=True, name="gap")(x)
    x = layers.LeakyReLU(negative_slope=0.2, name="lr")(x)
    x = layers.Reshape((-1, 1), name="rs")(x)
    topology = _export(keras.Model(inp, x), tmp_path)["modelTopology"]["config"]
    by_name = {la["name"]: la for la in topology["layers"]}
    names = [la["name"] for la in topology["layers"]]
    assert names == ["input_layer", "gap_pool", "sd", "gap_pool_2", "gap", "lr", "rs"]
    assert by_name["sd"]["class_name"] == "Dropout" and by_name["sd"]["config"]["rate"] == 0.3
    assert by_name["gap_pool_2"]["class_name"] == "GlobalAveragePooling2D"
    assert by_name["gap_pool_2"]["inbound_nodes"] == [[["sd", 0, 0, {}]]]
    assert by_name["gap"]["class_name"] == "Reshape"
    assert by_name["gap"]["config"]["target_shape"] == [1, 1, 3]
    assert by_name["gap"]["inbound_nodes"] == [[["gap_pool_2", 0, 0, {}]]]
    assert by_name["lr"]["config"]["alpha"] == pytest.approx(0.2)
    assert "negative_slope" not in by_name["lr"]["config"]
    assert by_name["rs"]["config"]["target_shape"] == [3, 1]


def test_bidirectional_mirror_backward_layer(quickjs: Any, tmp_path: Path) -> None:
    """An explicit backward_layer is accepted when it is the forward layer run backwards."""
    model = _seq(
        (4, 3),
        layers.Bidirectional(
            layers.LSTM(2, return_sequences=True, name="fw"),
            backward_layer=layers.LSTM(2, return_sequences=True, go_backwards=True, name="bw"),
            merge_mode="sum",
        ),
    )
    rng = np.random.default_rng(3)
    _randomize(model, rng)
    (x,) = _inputs(model, rng)
    (want,) = _keras_outputs(model, [x])
    _export(model, tmp_path)
    _assert_close(_tfjs_predict(quickjs, tmp_path, x), want)


@pytest.mark.parametrize(
    ("make", "error", "match"),
    [
        (lambda: _seq((5, 5, 2), layers.DepthwiseConv2D(2, dilation_rate=2)), ExportError, "ignores dilation"),
        (lambda: _seq((4,), layers.ReLU(negative_slope=0.1)), ExportError, "negative_slope"),
        (lambda: _seq((4,), layers.ReLU(threshold=0.5)), ExportError, "threshold"),
        (lambda: _seq((3, 4), layers.LayerNormalization(rms_scaling=True)), ExportError, "rms_scaling"),
        (lambda: _seq((3, 4), layers.BatchNormalization(axis=1)), ExportError, "not the last axis"),
        (
            lambda: _seq((3, 4, 2), layers.TimeDistributed(layers.LSTM(2, name="inner_lstm"))),
            UnsupportedLayerError,
            "the wrapped layer LSTM",
        ),
        (
            lambda: _seq((3, 4, 2), layers.TimeDistributed(layers.GlobalMaxPooling1D(keepdims=True))),
            ExportError,
            "keepdims",
        ),
        (
            lambda: _seq(
                (3, 4),
                layers.Bidirectional(layers.LSTM(2), backward_layer=layers.LSTM(3, go_backwards=True)),
            ),
            ExportError,
            "backward_layer",
        ),
        (
            lambda: _seq((3, 4), layers.Bidirectional(layers.LSTM(2), backward_layer=layers.GRU(2, go_backwards=True))),
            ExportError,
            "backward_layer",
        ),
    ],
)
def test_tfjs_incompatible_rejections(tmp_path: Path, make: Any, error: type[Exception], match: str) -> None:
    """Configurations tfjs 4.22 would silently compute otherwise (or cannot build) are refused."""
    with pytest.raises(error, match=match):
        keras_to_tfjs(make(), tmp_path)
    assert not (tmp_path / "model.json").exists()


def test_time_distributed_cases_cover_what_the_export_allows() -> None:
    from jsengine_ml.export import _TIME_DISTRIBUTABLE

    assert set(TIME_DISTRIBUTED) == set(_TIME_DISTRIBUTABLE)
