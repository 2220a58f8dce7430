"""Every layer type of the compiled runtime, on random configurations, against Keras and tfjs.

Each case builds a small Keras 3 model around one layer type with a seeded random configuration
and random weights, exports it to TF.js (``jsengine_ml.export``), and checks the compiled runtime
on every installed engine against Keras's own ``predict`` (the golden) and against tfjs 4.22 on
the same engine (an independent implementation). Batches of 0, 1, 3 and 17 rows exercise rows that
do not fill a SIMD tile; sizes are drawn so that widths are rarely multiples of 4.
"""

from __future__ import annotations

import json
import os
import re
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

os.environ.setdefault("KERAS_BACKEND", "jax")
keras = pytest.importorskip("keras", reason="the keras extra is not installed (pip install 'jsengine-ml[keras]')")
layers = keras.layers

import jsengine_ml  # noqa: E402
from jsengine_ml.errors import JSEngineMLError  # noqa: E402
from jsengine_ml.export import keras_to_tfjs  # noqa: E402
from jsengine_ml.model import load  # noqa: E402
from jsengine_ml.reference import forward  # noqa: E402
from jsengine_ml.topology import read_artifact_graph  # noqa: E402

BACKENDS = [i.name for i in jsengine_ml.available_backends() if i.available]
BATCHES = (0, 1, 3, 17)
#: Errors of tfjs 4.22 for layers it does not implement (causal Conv1D, Subtract, SeparableConv1D,
#: ELU alpha != 1, softmax over another axis): the compiled runtime runs them, checked against Keras.
TFJS_CANNOT = re.compile(r"not (yet )?(supported|implemented)|Unknown layer: (Subtract|SeparableConv1D)")
ACTIVATIONS = ("linear", "relu", "relu6", "sigmoid", "tanh", "softmax", "elu", "selu", "softplus", "softsign",
               "swish", "gelu", "mish", "hard_sigmoid", "log_softmax")

Builder = Callable[[np.random.Generator], tuple[Any, tuple[int, ...], str]]
CASES: dict[str, Builder] = {}


def case(name: str, count: int = 3) -> Callable[[Callable[[np.random.Generator, int], Any]], None]:
    """Register ``count`` seeded configurations of a builder ``fn(rng, i) -> (layer(s), input shape[, dtype])``."""

    def register(fn: Callable[[np.random.Generator, int], Any]) -> None:
        for i in range(count):
            def build(rng: np.random.Generator, fn: Any = fn, i: int = i) -> tuple[Any, tuple[int, ...], str]:
                made = fn(rng, i)
                return made if len(made) == 3 else (*made, "float32")
            CASES[f"{name}-{i}"] = build

    return register


def _model(body: Any, shape: tuple[int, ...], dtype: str) -> Any:
    """A functional model applying ``body`` (a layer, or a function of the input tensor)."""
    inp = keras.Input(shape, dtype=dtype, name="x")
    return keras.Model(inp, body(inp))


# ---------------------------------------------------------------------- the cases
@case("dense", 4)
def _dense(rng: np.random.Generator, i: int) -> Any:
    act = ACTIVATIONS[(3 * i + int(rng.integers(len(ACTIVATIONS)))) % len(ACTIVATIONS)]
    shape = (int(rng.integers(1, 23)),) if i % 2 == 0 else (int(rng.integers(2, 6)), int(rng.integers(1, 11)))
    return layers.Dense(int(rng.integers(1, 37)), activation=act, use_bias=bool(i != 1)), shape


for _act in ACTIVATIONS:
    @case(f"activation-{_act}", 1)
    def _activation(rng: np.random.Generator, i: int, act: str = _act) -> Any:
        return layers.Activation(act), (int(rng.integers(2, 5)), int(rng.integers(1, 9)))


@case("conv2d", 5)
def _conv2d(rng: np.random.Generator, i: int) -> Any:
    strides = int(rng.integers(1, 3))
    dilation = 1 if strides > 1 else int(rng.integers(1, 3))
    layer = layers.Conv2D(int(rng.integers(1, 10)), (int(rng.integers(1, 4)), int(rng.integers(1, 4))), strides=strides,
                          dilation_rate=dilation, padding=["same", "valid"][i % 2],
                          activation=["relu", "linear", "tanh", "relu6", "sigmoid"][i], use_bias=bool(i != 2))
    return layer, (int(rng.integers(5, 10)), int(rng.integers(5, 10)), int(rng.integers(1, 5)))


@case("conv1d", 4)
def _conv1d(rng: np.random.Generator, i: int) -> Any:
    strides = int(rng.integers(1, 3))
    dilation = 1 if strides > 1 else int(rng.integers(1, 3))
    layer = layers.Conv1D(int(rng.integers(1, 10)), int(rng.integers(1, 4)), strides=strides, dilation_rate=dilation,
                          padding=["same", "valid", "causal", "causal"][i], activation=["relu", "linear"][i % 2])
    return layer, (int(rng.integers(6, 12)), int(rng.integers(1, 6)))


@case("depthwise2d", 3)
def _depthwise(rng: np.random.Generator, i: int) -> Any:
    strides = int(rng.integers(1, 3))
    layer = layers.DepthwiseConv2D(int(rng.integers(1, 4)), strides=strides, depth_multiplier=int(rng.integers(1, 4)),
                                   padding=["same", "valid"][i % 2], activation=["relu", "linear", "tanh"][i])
    return layer, (int(rng.integers(5, 9)), int(rng.integers(5, 9)), int(rng.integers(1, 6)))


@case("separable2d", 3)
def _separable2d(rng: np.random.Generator, i: int) -> Any:
    layer = layers.SeparableConv2D(int(rng.integers(1, 9)), int(rng.integers(1, 4)), strides=int(rng.integers(1, 3)),
                                   depth_multiplier=int(rng.integers(1, 3)), padding=["same", "valid"][i % 2],
                                   activation=["relu", "linear", "elu"][i])
    return layer, (int(rng.integers(5, 9)), int(rng.integers(5, 9)), int(rng.integers(1, 5)))


@case("separable1d", 2)
def _separable1d(rng: np.random.Generator, i: int) -> Any:
    layer = layers.SeparableConv1D(int(rng.integers(1, 9)), int(rng.integers(1, 4)), padding=["same", "valid"][i],
                                   activation="relu")
    return layer, (int(rng.integers(5, 12)), int(rng.integers(1, 5)))


@case("pool2d", 6)
def _pool2d(rng: np.random.Generator, i: int) -> Any:
    kind = layers.MaxPooling2D if i % 2 == 0 else layers.AveragePooling2D
    size = (int(rng.integers(1, 4)), int(rng.integers(1, 4)))
    strides = None if i < 2 else (int(rng.integers(1, 3)), int(rng.integers(1, 4)))
    return kind(size, strides=strides, padding=["valid", "same"][(i // 2) % 2]), (
        int(rng.integers(4, 10)), int(rng.integers(4, 10)), int(rng.integers(1, 5)))


@case("pool1d", 4)
def _pool1d(rng: np.random.Generator, i: int) -> Any:
    kind = layers.MaxPooling1D if i % 2 == 0 else layers.AveragePooling1D
    return kind(int(rng.integers(1, 4)), strides=int(rng.integers(1, 4)), padding=["valid", "same"][i // 2]), (
        int(rng.integers(4, 12)), int(rng.integers(1, 5)))


@case("global-pool", 4)
def _global(rng: np.random.Generator, i: int) -> Any:
    kind = [layers.GlobalMaxPooling1D, layers.GlobalAveragePooling1D, layers.GlobalMaxPooling2D,
            layers.GlobalAveragePooling2D][i]
    shape = (int(rng.integers(2, 9)), int(rng.integers(1, 6)))
    return kind(keepdims=bool(i % 3 == 0)), shape if i < 2 else (int(rng.integers(2, 6)), *shape)


@case("shapes", 4)
def _shapes(rng: np.random.Generator, i: int) -> Any:
    a, b, c = (int(v) for v in rng.integers(2, 6, size=3))
    if i == 0:
        return lambda x: layers.Dense(3)(layers.Flatten()(x)), (a, b, c)
    if i == 1:
        return lambda x: layers.Dense(2)(layers.Reshape((b, a * c))(x)), (a, b, c)
    if i == 2:
        return lambda x: layers.Dense(2)(layers.Permute((3, 1, 2))(x)), (a, b, c)
    return lambda x: layers.SimpleRNN(3)(layers.RepeatVector(a)(x)), (b,)


@case("normalization", 4)
def _norm(rng: np.random.Generator, i: int) -> Any:
    if i == 0:
        return layers.BatchNormalization(epsilon=float(rng.uniform(1e-4, 1e-2))), (int(rng.integers(1, 20)),)
    if i == 1:
        return layers.BatchNormalization(center=False), (int(rng.integers(2, 5)), int(rng.integers(2, 5)))
    if i == 2:
        return layers.LayerNormalization(), (int(rng.integers(2, 20)),)
    return layers.LayerNormalization(axis=[-2, -1], scale=False), (int(rng.integers(2, 5)), int(rng.integers(2, 5)))


@case("identity", 2)
def _identity(rng: np.random.Generator, i: int) -> Any:
    if i == 0:
        return lambda x: layers.Dense(4)(layers.Dropout(0.5)(x)), (int(rng.integers(2, 9)),)
    return lambda x: layers.Conv1D(3, 2)(layers.SpatialDropout1D(0.5)(x)), (int(rng.integers(3, 9)), 3)


@case("activation-layers", 5)
def _act_layers(rng: np.random.Generator, i: int) -> Any:
    shape = (int(rng.integers(2, 5)), int(rng.integers(2, 9)))
    if i == 0:
        return layers.ReLU(max_value=float(rng.uniform(0.5, 2))), shape
    if i == 1:
        return layers.LeakyReLU(negative_slope=float(rng.uniform(0.01, 0.5))), shape
    if i == 2:
        return layers.PReLU(shared_axes=[1]), shape
    if i == 3:
        return layers.ELU(alpha=float(rng.uniform(0.5, 2))), shape
    return layers.Softmax(axis=1), shape


@case("embedding", 2)
def _embedding(rng: np.random.Generator, i: int) -> Any:
    vocab = int(rng.integers(5, 50))
    body = lambda x: layers.GlobalAveragePooling1D()(layers.Embedding(vocab, int(rng.integers(1, 9)))(x))  # noqa: E731
    return body, (int(rng.integers(1, 12)),), "int32"


def _rnn(kind: Any, rng: np.random.Generator, i: int, **extra: Any) -> Any:
    return kind(int(rng.integers(1, 14)), return_sequences=bool(i % 2), go_backwards=bool(i >= 2),
                activation=["tanh", "relu", "tanh", "sigmoid"][i], use_bias=bool(i != 3), **extra)


@case("simple_rnn", 4)
def _simple_rnn(rng: np.random.Generator, i: int) -> Any:
    return _rnn(layers.SimpleRNN, rng, i), (int(rng.integers(1, 9)), int(rng.integers(1, 6)))


@case("lstm", 4)
def _lstm(rng: np.random.Generator, i: int) -> Any:
    rec = ["sigmoid", "hard_sigmoid", "sigmoid", "tanh"][i]
    return _rnn(layers.LSTM, rng, i, recurrent_activation=rec), (int(rng.integers(1, 9)), int(rng.integers(1, 6)))


@case("gru", 2)
def _gru(rng: np.random.Generator, i: int) -> Any:
    return _rnn(layers.GRU, rng, i, reset_after=False), (int(rng.integers(1, 9)), int(rng.integers(1, 6)))


@case("gru-reset_after", 2)
def _gru_after(rng: np.random.Generator, i: int) -> Any:
    return _rnn(layers.GRU, rng, i + 1, reset_after=True), (int(rng.integers(1, 9)), int(rng.integers(1, 6)))


@case("bidirectional", 4)
def _bidirectional(rng: np.random.Generator, i: int) -> Any:
    inner = [layers.LSTM, layers.GRU, layers.SimpleRNN, layers.LSTM][i]
    extra = {"reset_after": False} if inner is layers.GRU else {}
    layer = layers.Bidirectional(inner(int(rng.integers(1, 8)), return_sequences=bool(i % 2), **extra),
                                 merge_mode=["concat", "sum", "mul", "ave"][i])
    return layer, (int(rng.integers(2, 8)), int(rng.integers(1, 5)))


@case("time_distributed", 2)
def _time_distributed(rng: np.random.Generator, i: int) -> Any:
    if i == 0:
        return layers.TimeDistributed(layers.Dense(int(rng.integers(1, 7)), activation="relu")), (
            int(rng.integers(2, 6)), int(rng.integers(1, 7)))
    return layers.TimeDistributed(layers.Conv1D(3, 2)), (int(rng.integers(2, 5)), int(rng.integers(3, 7)), 2)


@case("merge", 7)
def _merge(rng: np.random.Generator, i: int) -> Any:
    width = int(rng.integers(1, 9))
    merge = [layers.Add(), layers.Subtract(), layers.Multiply(), layers.Average(), layers.Maximum(), layers.Minimum(),
             layers.Concatenate(axis=-1)][i]
    count = 2 if i == 1 else int(rng.integers(2, 4))

    def body(x: Any) -> Any:
        branches = [layers.Dense(width, activation=["relu", "tanh", "linear"][b % 3])(x) for b in range(count)]
        return layers.Dense(3)(merge(branches))

    return body, (int(rng.integers(1, 9)),)


@case("graph", 2)
def _graph(rng: np.random.Generator, i: int) -> Any:
    def body(x: Any) -> Any:
        a = layers.Conv1D(4, 3, padding="same", activation="relu")(x)
        b = layers.LSTM(5, return_sequences=True)(x)
        c = layers.Concatenate(axis=1 if i else -1)([a, layers.Dense(4)(b)])
        c = layers.BatchNormalization()(c)
        return layers.Dense(3, activation="softmax")(layers.GlobalMaxPooling1D()(c))

    return body, (int(rng.integers(3, 9)), int(rng.integers(1, 4)))


# ---------------------------------------------------------------------- running them
def _randomize(model: Any, rng: np.random.Generator) -> None:
    """Random weights of a realistic scale (BatchNormalization variances positive)."""
    for layer in model.layers:
        weights = []
        for var in layer.weights:
            shape = tuple(var.shape)
            if "variance" in var.path:
                weights.append(rng.uniform(0.5, 2.0, size=shape).astype(np.float32))
            elif "embeddings" in var.path or "moving_mean" in var.path:
                weights.append(rng.normal(0, 1, size=shape).astype(np.float32))
            else:
                fan_in = shape[0] if len(shape) > 1 else 4
                weights.append(rng.normal(0, 1 / np.sqrt(max(fan_in, 1)), size=shape).astype(np.float32))
        if weights:
            layer.set_weights(weights)


def _inputs(rng: np.random.Generator, shape: tuple[int, ...], dtype: str, n: int, model: Any) -> np.ndarray:
    if dtype == "int32":
        vocab = next(layer.input_dim for layer in model.layers if isinstance(layer, layers.Embedding))
        return rng.integers(0, vocab, size=(n, *shape)).astype(np.int32)
    return rng.normal(0, 1.5, size=(n, *shape)).astype(np.float32)


Exported = tuple[Path, list[np.ndarray], list[np.ndarray], Any]


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[[str], Exported]]:
    """case id -> (model.json, inputs per batch size, Keras outputs per batch size, Keras model), built once."""
    built: dict[str, Exported] = {}
    root = tmp_path_factory.mktemp("layers")

    def get(case_id: str) -> Exported:
        if case_id not in built:
            rng = np.random.default_rng(zlib.crc32(case_id.encode()))
            keras.utils.set_random_seed(int(rng.integers(1 << 30)))
            body, shape, dtype = CASES[case_id](rng)
            model = _model(body, shape, dtype)
            _randomize(model, rng)
            path = keras_to_tfjs(model, root / case_id)
            xs = [_inputs(rng, shape, dtype, n, model) for n in BATCHES]
            ys = [np.asarray(model.predict(x, verbose=0), dtype=np.float32).reshape(len(x), -1) if len(x) else None
                  for x in xs]
            built[case_id] = (path, xs, ys, model)  # type: ignore[assignment]
        return built[case_id]

    yield get


@pytest.mark.parametrize("case_id", sorted(CASES))
def test_numpy_reference_matches_keras(case_id: str, exported: Any) -> None:
    """The one numpy forward pass (jsengine_ml.reference.forward) on the same artifacts."""
    path, xs, ys, _ = exported(case_id)
    graph = read_artifact_graph(path)
    for x, y in zip(xs, ys, strict=True):
        if y is not None:
            out = forward(graph, x, np.float64)[0].reshape(len(x), -1)
            np.testing.assert_allclose(out, y, rtol=1e-4, atol=2e-5, err_msg=f"{case_id}, batch {len(x)}")


@pytest.fixture(scope="module", params=BACKENDS)
def shared_engine(request: pytest.FixtureRequest) -> Iterator[Any]:
    with jsengine_ml.create_engine(request.param) as engine:
        yield engine


def _tfjs_differs(model_json: Path) -> str | None:
    """Why tfjs 4.22 cannot serve as the reference for this artifact, if it cannot."""
    text = model_json.read_text()
    if '"hard_sigmoid"' in text:
        return "tfjs computes hard_sigmoid as clip(0.2x+0.5, 0, 1), Keras 3 as relu6(x+3)/6"
    if '"reset_after": true' in json.dumps(json.loads(text)):
        return "tfjs 4.22 cannot run GRU reset_after=True"
    return None


#: (case, kernel set) pairs already checked against tfjs in this session: tfjs, the independent
#: implementation, checks each kernel set (WebAssembly, ES5) once per case, on the first engine that
#: runs it; every engine is checked against Keras.
_CHECKED_AGAINST_TFJS: set[tuple[str, str]] = set()


@pytest.mark.parametrize("case_id", sorted(CASES))
def test_compiled_layer_matches_keras_and_tfjs(case_id: str, shared_engine: Any, exported: Any) -> None:
    path, xs, ys, _ = exported(case_id)
    with load(path, engine=shared_engine, runtime="compiled") as model:
        kernels = model.metadata.extra["kernels"]
        for x, y in zip(xs, ys, strict=True):
            out = model.predict(x)
            assert out.shape[0] == len(x)
            if y is not None:
                np.testing.assert_allclose(out, y, rtol=1e-4, atol=2e-5, err_msg=f"{case_id}, batch {len(x)}")
        compiled = [model.predict(x) for x in xs if len(x)]
    if _tfjs_differs(path) is not None or (case_id, kernels) in _CHECKED_AGAINST_TFJS:
        return  # Keras above is the reference (tfjs would disagree by design, or has seen these kernels)
    _CHECKED_AGAINST_TFJS.add((case_id, kernels))
    try:
        with load(path, engine=shared_engine, runtime="tfjs") as reference:
            for x, mine in zip([x for x in xs if len(x)], compiled, strict=True):
                np.testing.assert_allclose(mine, reference.predict(x), rtol=1e-4, atol=2e-5,
                                           err_msg=f"{case_id} vs tfjs")
    except JSEngineMLError as exc:  # what tfjs 4.22 itself cannot run: Keras above is the reference
        assert TFJS_CANNOT.search(str(exc)), f"{case_id}: tfjs failed unexpectedly: {exc}"


NONFINITE_CASES = ["dense-0", "activation-softmax-0", "conv2d-0", "pool2d-0", "pool2d-1", "lstm-0", "normalization-2",
                   "merge-4", "global-pool-0"]


@pytest.mark.parametrize("case_id", NONFINITE_CASES)
def test_nan_and_inf_inputs_propagate_as_in_keras(case_id: str, shared_engine: Any, exported: Any) -> None:
    """With check_finite off, NaN and ±inf reach the kernels and come out where Keras (jax) puts them."""
    path, xs, _, keras_model = exported(case_id)
    x = xs[-1].copy()
    flat = x.reshape(len(x), -1)
    flat[1, 0], flat[2, -1], flat[4, flat.shape[1] // 2] = np.nan, np.inf, -np.inf
    expected = np.asarray(keras_model.predict(x, verbose=0), dtype=np.float32).reshape(len(x), -1)
    with load(path, engine=shared_engine, runtime="compiled") as model:
        with pytest.raises(jsengine_ml.InputError, match="non-finite"):
            model.predict(x)
        model.check_finite = False
        out = model.predict(x)
    assert np.array_equal(np.isnan(out), np.isnan(expected)), f"{case_id}: NaN positions differ"
    np.testing.assert_allclose(out, expected, rtol=1e-4, atol=2e-5, equal_nan=True)
