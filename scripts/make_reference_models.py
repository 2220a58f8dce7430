"""Train the reference models and write them with golden outputs into jsengine_ml/reference_models/.

    /work/venv/bin/python scripts/make_reference_models.py [--only NAME ...] [--no-verify]

Needs keras 3, jax and scikit-learn (datasets shipped with scikit-learn, no downloads). Every model
directory gets ``model.keras``, the TF.js export (``model.json`` + shard, made by
:func:`jsengine_ml.export.keras_to_tfjs`), ``golden.npz`` (``x`` fixed inputs, ``y`` = Keras
``model.predict(x)``) and ``reference.json``. At the end the exports are checked in node with tfjs
(scripts/verify_reference_models_node.js) when node is available.
"""

from __future__ import annotations

import os

os.environ.setdefault("KERAS_BACKEND", "jax")

import argparse
import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import keras
import numpy as np
from keras import layers
from sklearn.datasets import load_breast_cancer, load_digits, load_wine
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from jsengine_ml.export import keras_to_tfjs  # noqa: E402

OUT = ROOT / "jsengine_ml" / "reference_models"
SEED = 1234
GOLDEN_ROWS = 48


def _fit(
    model: keras.Model, x: np.ndarray, y: np.ndarray, epochs: int, batch_size: int = 32, lr: float = 1e-2
) -> None:
    """Adam + cross-entropy with label smoothing 0.1.

    The smoothing keeps the softmax outputs away from 0/1, so the golden outputs stay sensitive to
    errors in the logits (a saturated 1.0 would hide them).
    """
    n_classes = int(model.outputs[0].shape[-1])
    model.compile(
        optimizer=keras.optimizers.Adam(lr),
        loss=keras.losses.CategoricalCrossentropy(label_smoothing=0.1),
        metrics=["accuracy"],
    )
    y_onehot = np.eye(n_classes, dtype=np.float32)[y]
    model.fit(x, y_onehot, epochs=epochs, batch_size=batch_size, verbose=0, shuffle=True)


def _accuracy(model: keras.Model, x: np.ndarray, y: np.ndarray) -> float:
    pred = model.predict(x, verbose=0).argmax(axis=-1)
    return float((pred == y).mean())


def _split(x: np.ndarray, y: np.ndarray, test_size: float = 0.3) -> tuple[np.ndarray, ...]:
    return tuple(train_test_split(x, y, test_size=test_size, stratify=y, random_state=SEED))


def _scaler_json(scaler: StandardScaler) -> dict[str, list[float]]:
    return {"mean": [float(v) for v in scaler.mean_], "scale": [float(v) for v in scaler.scale_]}


# --------------------------------------------------------------------------- models


def make_wine(d: Path) -> dict[str, Any]:
    data = load_wine()
    x_tr, x_te, y_tr, y_te = _split(data.data.astype(np.float64), data.target)
    scaler = StandardScaler().fit(x_tr)
    xs_tr = scaler.transform(x_tr).astype(np.float32)
    xs_te = scaler.transform(x_te).astype(np.float32)
    model = keras.Sequential(
        [
            keras.Input((13,), name="features"),
            layers.Dense(64, activation="relu", name="hidden"),
            layers.Dense(3, activation="softmax", name="probs"),
        ],
        name="wine_mlp",
    )
    _fit(model, xs_tr, y_tr, epochs=60, batch_size=16)
    (d / "preprocess.json").write_text(json.dumps(_scaler_json(scaler), indent=1) + "\n")
    np.savez(d / "stream.npz", x_raw=x_te.astype(np.float32), y=y_te.astype(np.int32))
    return {
        "model": model,
        "x": xs_te[:GOLDEN_ROWS],
        "description": "Wine cultivar classifier: Dense(64, relu) -> Dense(3, softmax) on standardized "
        "features (preprocess.json holds the train-set scaler; stream.npz the raw test rows).",
        "dataset": "sklearn.datasets.load_wine, stratified 70/30 split (random_state=1234)",
        "test_accuracy": _accuracy(model, xs_te, y_te),
        "classes": [str(c) for c in data.target_names],
        "preprocess": "standardize with preprocess.json: (x - mean) / scale",
    }


def make_branches(d: Path) -> dict[str, Any]:
    data = load_breast_cancer()
    x_tr, x_te, y_tr, y_te = _split(data.data.astype(np.float64), data.target)
    scaler = StandardScaler().fit(x_tr)
    xs_tr = scaler.transform(x_tr).astype(np.float32)
    xs_te = scaler.transform(x_te).astype(np.float32)
    inp = keras.Input((30,), name="features")
    a = layers.Dense(16, activation="relu", name="branch_a_dense")(inp)
    a = layers.BatchNormalization(name="branch_a_bn")(a)
    a = layers.Dropout(0.2, name="branch_a_dropout")(a)
    b = layers.Dense(16, activation="tanh", name="branch_b_dense")(inp)
    b = layers.BatchNormalization(name="branch_b_bn")(b)
    summed = layers.Add(name="sum")([a, b])
    merged = layers.Concatenate(name="concat")([a, b, summed])
    h = layers.Dense(8, activation="relu", name="head_dense")(merged)
    h = layers.Dropout(0.1, name="head_dropout")(h)
    out = layers.Dense(2, activation="softmax", name="probs")(h)
    model = keras.Model(inp, out, name="branches")
    _fit(model, xs_tr, y_tr, epochs=25, batch_size=16, lr=5e-3)
    (d / "preprocess.json").write_text(json.dumps(_scaler_json(scaler), indent=1) + "\n")
    return {
        "model": model,
        "x": xs_te[:GOLDEN_ROWS],
        "description": "Functional model: two Dense branches with BatchNormalization/Dropout merged by Add "
        "and Concatenate, Dense head, 2-way softmax (malignant/benign).",
        "dataset": "sklearn.datasets.load_breast_cancer, stratified 70/30 split (random_state=1234)",
        "test_accuracy": _accuracy(model, xs_te, y_te),
        "classes": [str(c) for c in data.target_names],
        "preprocess": "standardize with preprocess.json: (x - mean) / scale",
    }


def make_digits_cnn(d: Path) -> dict[str, Any]:
    data = load_digits()
    x = (data.images / 16.0).astype(np.float32)[..., None]
    x_tr, x_te, y_tr, y_te = _split(x, data.target)
    model = keras.Sequential(
        [
            keras.Input((8, 8, 1), name="image"),
            layers.Conv2D(8, 3, padding="same", activation="relu", name="conv1"),
            layers.MaxPooling2D(2, name="pool1"),
            layers.Conv2D(16, 3, padding="same", activation="relu", name="conv2"),
            layers.Flatten(name="flatten"),
            layers.Dense(10, activation="softmax", name="probs"),
        ],
        name="digits_cnn",
    )
    _fit(model, x_tr, y_tr, epochs=15, batch_size=32, lr=3e-3)
    return {
        "model": model,
        "x": x_te[:GOLDEN_ROWS],
        "description": "Conv2D -> MaxPooling2D -> Conv2D -> Flatten -> Dense(10, softmax) on 8x8 digits "
        "scaled to [0, 1].",
        "dataset": "sklearn.datasets.load_digits, stratified 70/30 split (random_state=1234)",
        "test_accuracy": _accuracy(model, x_te, y_te),
        "classes": [str(c) for c in range(10)],
        "preprocess": "pixel / 16, shape (8, 8, 1)",
    }


def _sequence_data(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Noisy 2-feature sequences of length 10; label 1 when the signal (feature 0) sums above 0."""
    signal = rng.normal(0.0, 1.0, size=(n, 10))
    noise = rng.normal(0.0, 1.0, size=(n, 10))
    x = np.stack([signal + 0.3 * noise, noise], axis=-1).astype(np.float32)
    y = (signal.sum(axis=1) > 0).astype(np.int64)
    return x, y


def _make_sequence(d: Path, kind: str) -> dict[str, Any]:
    rng = np.random.default_rng(SEED)
    x_tr, y_tr = _sequence_data(1500, rng)
    x_te, y_te = _sequence_data(400, rng)
    rnn = layers.LSTM(12, name="lstm") if kind == "LSTM" else layers.GRU(12, reset_after=False, name="gru")
    model = keras.Sequential(
        [keras.Input((10, 2), name="sequence"), rnn, layers.Dense(2, activation="softmax", name="probs")],
        name=f"sequence_{kind.lower()}",
    )
    _fit(model, x_tr, y_tr, epochs=12, batch_size=32, lr=1e-2)
    extra = " (reset_after=False: tfjs GRUCell does not implement reset_after=True)" if kind == "GRU" else ""
    return {
        "model": model,
        "x": x_te[:GOLDEN_ROWS],
        "description": f"{kind}(12){extra} -> Dense(2, softmax): does the noisy signal (feature 0) of a "
        "length-10 sequence sum above zero? Feature 1 is pure noise.",
        "dataset": f"synthetic, numpy default_rng({SEED}): signal ~ N(0,1), "
        "x0 = signal + 0.3*noise, x1 = noise",
        "test_accuracy": _accuracy(model, x_te, y_te),
        "classes": ["sum<=0", "sum>0"],
    }


def make_sequence_lstm(d: Path) -> dict[str, Any]:
    return _make_sequence(d, "LSTM")


def make_sequence_gru(d: Path) -> dict[str, Any]:
    return _make_sequence(d, "GRU")


def make_embedding(d: Path) -> dict[str, Any]:
    vocab, length = 40, 11
    rng = np.random.default_rng(SEED + 1)

    def data(n: int) -> tuple[np.ndarray, np.ndarray]:
        tokens = rng.integers(1, vocab, size=(n, length)).astype(np.int32)
        y = ((tokens < vocab // 2).sum(axis=1) > length // 2).astype(np.int64)
        return tokens, y

    x_tr, y_tr = data(2000)
    x_te, y_te = data(400)
    model = keras.Sequential(
        [
            keras.Input((length,), dtype="int32", name="tokens"),
            layers.Embedding(vocab, 8, name="embedding"),
            layers.GlobalAveragePooling1D(name="avg"),
            layers.Dense(16, activation="relu", name="hidden"),
            layers.Dense(2, activation="softmax", name="probs"),
        ],
        name="embedding_bag",
    )
    _fit(model, x_tr, y_tr, epochs=15, batch_size=32, lr=1e-2)
    return {
        "model": model,
        "x": x_te[:GOLDEN_ROWS],
        "description": "Embedding(40, 8) -> GlobalAveragePooling1D -> Dense(16, relu) -> Dense(2, softmax): "
        "are most of the 11 tokens from the lower half of the vocabulary (ids 1..19)?",
        "dataset": f"synthetic, numpy default_rng({SEED + 1}): tokens uniform in [1, 40)",
        "test_accuracy": _accuracy(model, x_te, y_te),
        "classes": ["mostly_high", "mostly_low"],
    }


def make_multi_io(d: Path) -> dict[str, Any]:
    """Two named inputs (numeric features, a token sequence) and two named outputs (class, score)."""
    vocab, length, width = 30, 12, 10
    rng = np.random.default_rng(SEED + 2)

    def data(n: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
        numeric = rng.normal(0, 1, size=(n, width)).astype(np.float32)
        tokens = rng.integers(1, vocab, size=(n, length)).astype(np.int32)
        low = (tokens < vocab // 2).mean(axis=1)
        signal = numeric[:, 0] + numeric[:, 1] - numeric[:, 2]
        cls = np.where(signal > 0.5, 2, np.where(low > 0.5, 1, 0))
        score = (0.5 * signal + low).astype(np.float32)[:, None]
        return [numeric, tokens], [cls, score]

    (x_tr, y_tr), (x_te, y_te) = data(2000), data(400)
    numeric = keras.Input((width,), name="numeric")
    tokens = keras.Input((length,), dtype="int32", name="tokens")
    a = layers.Dense(16, activation="relu", name="numeric_dense")(numeric)
    a = layers.BatchNormalization(name="numeric_bn")(a)
    t = layers.Embedding(vocab, 8, name="embedding")(tokens)
    t = layers.Conv1D(8, 3, padding="same", activation="relu", name="conv")(t)
    t = layers.LSTM(8, name="lstm")(t)
    h = layers.Concatenate(name="concat")([a, t])
    h = layers.Dense(16, activation="tanh", name="head")(h)
    proba = layers.Dense(3, activation="softmax", name="proba")(h)
    score = layers.Dense(1, name="score")(h)
    model = keras.Model([numeric, tokens], [proba, score], name="multi_io")
    model.compile(optimizer=keras.optimizers.Adam(1e-2),
                  loss=[keras.losses.SparseCategoricalCrossentropy(), keras.losses.MeanSquaredError()])
    model.fit(x_tr, y_tr, epochs=12, batch_size=32, verbose=0, shuffle=True)
    pred = model.predict(x_te, verbose=0)
    return {
        "model": model,
        "x": [x[:GOLDEN_ROWS] for x in x_te],
        "description": "Functional model with two named inputs (numeric: 10 floats; tokens: 12 ids) and two named "
        "outputs (proba: 3-way softmax; score: regression): Dense + BatchNormalization on the numbers, "
        "Embedding -> Conv1D -> LSTM on the tokens, Concatenate, Dense head.",
        "dataset": f"synthetic, numpy default_rng({SEED + 2})",
        "test_accuracy": float((pred[0].argmax(axis=1) == y_te[0]).mean()),
        "classes": ["none", "mostly_low_tokens", "high_signal"],
    }


MODELS: dict[str, Callable[[Path], dict[str, Any]]] = {
    "wine": make_wine,
    "branches": make_branches,
    "digits_cnn": make_digits_cnn,
    "sequence_lstm": make_sequence_lstm,
    "sequence_gru": make_sequence_gru,
    "embedding": make_embedding,
    "multi_io": make_multi_io,
}


def build(name: str) -> dict[str, Any]:
    """Train model ``name`` and (re)write its reference directory; return its reference.json dict."""
    d = OUT / name
    if d.exists():
        shutil.rmtree(d)
    d.mkdir(parents=True)
    keras.utils.set_random_seed(SEED)
    info = MODELS[name](d)
    model: keras.Model = info.pop("model")
    xs = info.pop("x")
    xs = [xs] if isinstance(xs, np.ndarray) else xs
    xs = [x.astype(np.int32) if np.issubdtype(x.dtype, np.integer) else x.astype(np.float32) for x in xs]
    ys = model.predict(xs if len(xs) > 1 else xs[0], verbose=0)
    ys = [np.asarray(y, dtype=np.float32) for y in (ys if isinstance(ys, (list, tuple)) else [ys])]
    assert all(y.ndim == 2 for y in ys), [y.shape for y in ys]
    model.save(d / "model.keras")
    keras_to_tfjs(model, d)
    x, y = xs[0], ys[0]
    if len(xs) == 1 and len(ys) == 1:
        np.savez(d / "golden.npz", x=x, y=y)
    else:  # named: x_<input>, y_<output>
        names_in = [t.name.split(":")[0] for t in model.inputs]
        np.savez(d / "golden.npz", **{f"x_{n}": v for n, v in zip(names_in, xs, strict=True)},
                 **{f"y_{n}": v for n, v in zip(model.output_names, ys, strict=True)})
        info["inputs"] = [{"name": n, "shape": [None, *v.shape[1:]], "dtype": str(v.dtype)}
                          for n, v in zip(names_in, xs, strict=True)]
        info["outputs"] = [{"name": n, "shape": [None, *v.shape[1:]], "dtype": "float32"}
                           for n, v in zip(model.output_names, ys, strict=True)]
    ref = {
        "name": name,
        "description": info.pop("description"),
        "input_shape": [None, *x.shape[1:]],
        "output_shape": [None, y.shape[1]],
        "input_dtype": str(x.dtype),
        "dataset": info.pop("dataset"),
        "test_accuracy": round(info.pop("test_accuracy"), 4),
        "golden_rows": int(x.shape[0]),
        "keras_version": keras.__version__,
        "trained_with_backend": keras.backend.backend(),
        **info,
    }
    (d / "reference.json").write_text(json.dumps(ref, indent=1) + "\n")
    size = sum(p.stat().st_size for p in d.iterdir())
    print(f"{name:14s} test_accuracy={ref['test_accuracy']:.4f} dir={size / 1024:.1f} KB", flush=True)
    return ref


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", choices=sorted(MODELS), help="build only these models")
    parser.add_argument("--no-verify", action="store_true", help="skip the node/tfjs check")
    args = parser.parse_args(argv)
    for name in args.only or list(MODELS):
        build(name)
    if args.no_verify:
        return 0
    node = shutil.which("node")
    if node is None or not (ROOT / "jsengine_ml" / "js" / "node_modules" / "@tensorflow" / "tfjs").is_dir():
        print("node or tfjs not available: skipping the node verification")
        return 0
    dirs = [str(OUT / n) for n in (args.only or list(MODELS))]
    return subprocess.call([node, str(ROOT / "scripts" / "verify_reference_models_node.js"), *dirs])


if __name__ == "__main__":
    raise SystemExit(main())
