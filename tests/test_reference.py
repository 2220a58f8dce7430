"""jsengine_ml.reference against Keras 3 (jax backend) as the oracle.

Every case builds one Keras layer with a seeded random configuration, sets seeded random weights
with ``layer.set_weights``, runs ``model.predict`` on seeded random float32 inputs (some with
NaN / inf where Keras' result is well defined) and compares with the reference computed in
float64 (rtol = atol = 1e-5, NaN positions equal), and again with the reference's float32 path.

To keep the run short, all cases of a group share one functional model (one input and one
output per case), built and predicted once.
"""

from __future__ import annotations

import functools
import inspect
import math
import os
import re
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest

os.environ.setdefault("KERAS_BACKEND", "jax")
keras = pytest.importorskip("keras", reason="Keras 3 (jax backend) is the oracle for jsengine_ml.reference")
if not keras.__version__.startswith("3.") or keras.backend.backend() != "jax":
    pytest.skip(
        f"needs Keras 3 with the jax backend, found keras {keras.__version__} / {keras.backend.backend()}",
        allow_module_level=True,
    )
layers = keras.layers


def fast(cls: Any, *args: Any, **kwargs: Any) -> Any:
    """``cls(*args, **kwargs)`` with all initializers "zeros": the weights get set anyway, and
    jax compiling random / orthogonal initializers per shape dominated the run time."""
    for name in inspect.signature(cls.__init__).parameters:
        if name.endswith("_initializer") and name not in kwargs:
            kwargs[name] = "zeros"
    return cls(*args, **kwargs)


class _FastLayers:
    """``L.Dense(...)`` is ``fast(keras.layers.Dense, ...)``."""

    def __getattr__(self, name: str) -> Any:
        return functools.partial(fast, getattr(keras.layers, name))


L = _FastLayers()

from jsengine_ml import reference as R  # noqa: E402

# The LayerNormalization(rms_scaling=True) cases are deliberate (deprecated, but in exported models).
pytestmark = pytest.mark.filterwarnings("ignore:You passed `rms_scaling=True`:UserWarning")

RTOL = ATOL = 1e-5
# The float32 path accumulates in float32 like Keras does, in another order.
RTOL32 = ATOL32 = 2e-4
BATCH = 3
NAN, INF = float("nan"), float("inf")


# --------------------------------------------------------------------------------------------
# case machinery
# --------------------------------------------------------------------------------------------


class Weights:
    """A layer's weights in ``get_weights`` order, also addressable by variable name."""

    def __init__(self, arrays: Sequence[np.ndarray], paths: Sequence[str]) -> None:
        self.list = list(arrays)
        self.paths = list(paths)

    def get(self, name: str) -> np.ndarray | None:
        hits = [a for a, p in zip(self.list, self.paths, strict=True) if p.split("/")[-1] == name]
        if len(hits) > 1:
            raise KeyError(f"several weights named {name!r}: {self.paths}")
        return hits[0] if hits else None

    def __getitem__(self, name: str) -> np.ndarray:
        found = self.get(name)
        if found is None:
            raise KeyError(f"no weight {name!r} in {self.paths}")
        return found

    def astype(self, dtype: Any) -> Weights:
        return Weights([a.astype(dtype) for a in self.list], self.paths)


RefFn = Callable[[list[np.ndarray], Weights], Any]


@dataclass
class Case:
    group: str
    name: str
    inputs: list[np.ndarray]
    make_layer: Callable[[], Any]
    ref: RefFn
    # How to call the layer on the Keras inputs (default: one input -> layer(x), several -> layer(list)).
    call: Callable[[Any, list[Any]], Any] | None = None
    # Weight generator: (rng, variable path, shape) -> array; default normal(0, 0.5).
    weight_fn: Callable[[np.random.Generator, str, tuple[int, ...]], np.ndarray] | None = None
    seed: int = 0
    weights: Weights | None = field(default=None, repr=False)

    @property
    def id(self) -> str:
        return f"{self.group}:{self.name}"


def default_weight(rng: np.random.Generator, path: str, shape: tuple[int, ...]) -> np.ndarray:
    if path.endswith("variance"):
        return rng.uniform(0.3, 2.0, size=shape).astype(np.float32)
    return (0.5 * rng.standard_normal(shape)).astype(np.float32)


def normal(rng: np.random.Generator, *shape: int, scale: float = 1.0) -> np.ndarray:
    return (scale * rng.standard_normal((BATCH, *shape))).astype(np.float32)


def group_rng(group: str) -> np.random.Generator:
    return np.random.default_rng(zlib.crc32(group.encode()))


def _flat(outputs: Any) -> list[Any]:
    if isinstance(outputs, (list, tuple)):
        return list(outputs)
    return [outputs]


@functools.cache
def predict_group(group: str) -> dict[str, list[np.ndarray]]:
    """Build one model for all cases of ``group``, set their weights, predict; outputs by case id."""
    cases = [c for c in ALL_CASES if c.group == group]
    model_inputs: list[Any] = []
    model_outputs: list[Any] = []
    spans: list[tuple[Case, Any, int]] = []
    for case in cases:
        ins = [keras.Input(shape=a.shape[1:], dtype="float32") for a in case.inputs]
        layer = case.make_layer()
        if case.call is not None:
            out = case.call(layer, ins)
        else:
            out = layer(ins[0] if len(ins) == 1 else ins)
        outs = _flat(out)
        model_inputs += ins
        spans.append((case, layer, len(outs)))
        model_outputs += outs
    model = keras.Model(model_inputs, model_outputs)
    for case, layer, _ in spans:
        rng = np.random.default_rng(case.seed)
        paths = [v.path for v in layer.weights]
        fn = case.weight_fn or default_weight
        arrays = [fn(rng, p, tuple(v.shape)) for p, v in zip(paths, layer.weights, strict=True)]
        layer.set_weights(arrays)
        case.weights = Weights(arrays, paths)
    preds = _flat(model.predict([a for c in cases for a in c.inputs], verbose=0, batch_size=BATCH))
    result: dict[str, list[np.ndarray]] = {}
    pos = 0
    for case, _, n in spans:
        result[case.id] = [np.asarray(p) for p in preds[pos : pos + n]]
        pos += n
    return result


def assert_matches(actual: Any, expected: Any, what: str, rtol: float = RTOL, atol: float = ATOL) -> None:
    actual = np.asarray(actual, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != {expected.shape}"
    nan_a, nan_e = np.isnan(actual), np.isnan(expected)
    assert np.array_equal(nan_a, nan_e), (
        f"{what}: NaN positions differ (keras {np.argwhere(nan_a)[:5].tolist()}, "
        f"reference {np.argwhere(nan_e)[:5].tolist()})"
    )
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=atol, equal_nan=True, err_msg=what)


# --------------------------------------------------------------------------------------------
# cases
# --------------------------------------------------------------------------------------------

CASES: list[Case] = []


def case(group: str, name: str, inputs: list[np.ndarray], make_layer: Callable[[], Any], ref: RefFn, **kw: Any) -> None:
    CASES.append(Case(group, name, inputs, make_layer, ref, seed=zlib.crc32(f"{group}:{name}".encode()), **kw))


def special_row(n: int, rng: np.random.Generator) -> np.ndarray:
    """A (BATCH, n) float32 batch: row 0 starts with NaN/inf/signed zeros, the rest is random."""
    specials = [NAN, INF, -INF, 0.0, -0.0, 1.0, -1.0, 3.0, -3.0, 6.0, -6.0, 20.0, -20.0]
    x = (3.0 * rng.standard_normal((BATCH, n))).astype(np.float32)
    k = min(n, len(specials))
    x[0, :k] = specials[:k]
    return x


def _only(fn: Callable[[np.ndarray], Any]) -> RefFn:
    """A reference of one input and no weights."""
    return lambda xs, w: fn(xs[0])


# activations ---------------------------------------------------------------------------------


def _activation_cases() -> None:
    rng = group_rng("activation")
    x = special_row(16, rng)
    names = [
        "linear",
        "relu",
        "relu6",
        "elu",
        "selu",
        "sigmoid",
        "hard_sigmoid",
        "tanh",
        "softplus",
        "softsign",
        "swish",
        "silu",
        "gelu",
        "mish",
        "leaky_relu",
        "exponential",
        "softmax",
        "log_softmax",
        "hard_silu",
        "hard_swish",
    ]
    for name in names:
        case(
            "activation",
            name,
            [x],
            lambda name=name: L.Activation(name),
            _only(lambda v, name=name: R.activation(v, name)),
        )
    case(
        "activation",
        "gelu-approximate",
        [x],
        lambda: L.Activation(lambda t: keras.activations.gelu(t, approximate=True)),
        _only(lambda v: R.activation(v, "gelu", approximate=True)),
    )
    case(
        "activation",
        "gelu_new",  # TF.js' name of the tanh form
        [x],
        lambda: L.Activation(lambda t: keras.activations.gelu(t, approximate=True)),
        _only(lambda v: R.activation(v, "gelu_new")),
    )
    x3 = normal(rng, 4, 5, scale=3.0)
    x3[0, 1, 2] = NAN
    for axis in (1, 2, -1):
        case(
            "activation",
            f"softmax-axis{axis}",
            [x3],
            lambda axis=axis: L.Activation(lambda t: keras.activations.softmax(t, axis=axis)),
            _only(lambda v, axis=axis: R.activation(v, "softmax", axis=axis)),
        )
        case(
            "activation",
            f"log_softmax-axis{axis}",
            [x3],
            lambda axis=axis: L.Activation(lambda t: keras.activations.log_softmax(t, axis=axis)),
            _only(lambda v, axis=axis: R.log_softmax(v, axis=axis)),
        )
    for slope in rng.uniform(0.01, 0.9, size=2).round(3):
        s = float(slope)
        case(
            "activation",
            f"leaky_relu-{s}",
            [x],
            lambda s=s: L.Activation(lambda t: keras.activations.leaky_relu(t, negative_slope=s)),
            _only(lambda v, s=s: R.activation(v, "leaky_relu", negative_slope=s)),
        )


def _activation_layer_cases() -> None:
    rng = group_rng("activation_layer")
    x = special_row(16, rng)
    relu_configs: list[dict[str, Any]] = [
        {},
        {"max_value": 6.0},
        {"max_value": 6.0, "negative_slope": 0.2},
        {"threshold": 0.5},
        {"negative_slope": 0.1, "threshold": -0.7, "max_value": 2.0},
    ]
    for _ in range(4):
        cfg: dict[str, Any] = {}
        if rng.random() < 0.6:
            cfg["max_value"] = round(float(rng.uniform(0.5, 8.0)), 2)
        if rng.random() < 0.6:
            cfg["negative_slope"] = round(float(rng.uniform(0.0, 0.5)), 2)
        if rng.random() < 0.6:
            cfg["threshold"] = round(float(rng.uniform(-1.0, 1.0)), 2)
        relu_configs.append(cfg)
    for i, cfg in enumerate(relu_configs):
        if cfg.get("threshold", 0.0) >= 0.0:  # the layer refuses negative thresholds, the function not
            case(
                "activation_layer",
                f"ReLU{i}-{cfg}",
                [x],
                lambda cfg=cfg: L.ReLU(**cfg),
                _only(lambda v, cfg=cfg: R.relu(v, **cfg)),
            )
        case(
            "activation_layer",
            f"relu-activation{i}-{cfg}",
            [x],
            lambda cfg=cfg: L.Activation(lambda t: keras.activations.relu(t, **cfg)),
            _only(lambda v, cfg=cfg: R.activation(v, "relu", **cfg)),
        )
    for slope in [0.3, round(float(rng.uniform(0.0, 1.0)), 3)]:
        case(
            "activation_layer",
            f"LeakyReLU-{slope}",
            [x],
            lambda s=slope: L.LeakyReLU(negative_slope=s),
            _only(lambda v, s=slope: R.leaky_relu(v, s)),
        )
    for alpha in [1.0, round(float(rng.uniform(0.1, 2.0)), 3)]:
        case(
            "activation_layer",
            f"ELU-{alpha}",
            [x],
            lambda a=alpha: L.ELU(alpha=a),
            _only(lambda v, a=alpha: R.activation(v, "elu", alpha=a)),
        )
    # ThresholdedReLU is gone from Keras 3; ReLU(threshold=theta) is its replacement and agrees
    # on everything but NaN / -inf (see test_thresholded_relu_keras2_semantics).
    xf = normal(rng, 16, scale=2.0)
    for theta in [1.0, round(float(rng.uniform(0.0, 1.5)), 3)]:
        case(
            "activation_layer",
            f"ThresholdedReLU-{theta}",
            [xf],
            lambda t=theta: L.ReLU(threshold=t),
            _only(lambda v, t=theta: R.activation(v, "thresholded_relu", theta=t)),
        )
    x4 = normal(rng, 4, 5, 3, scale=2.0)
    x4[0, 0, 0] = [NAN, INF, -INF]
    for shared in [None, [1, 2], [3], [1, 2, 3]]:
        case(
            "activation_layer",
            f"PReLU-shared{shared}",
            [x4],
            lambda s=shared: L.PReLU(shared_axes=s),
            lambda xs, w: R.activation(xs[0], "prelu", alpha=w["alpha"]),
        )
    for axis in [-1, 1, (1, 2)]:
        case(
            "activation_layer",
            f"Softmax-axis{axis}",
            [x4],
            lambda a=axis: L.Softmax(axis=a),
            _only(lambda v, a=axis: R.softmax(v, axis=a)),
        )


# dense, conv, pooling ----------------------------------------------------------------------

ACTS = ["linear", "relu", "tanh", "sigmoid", "elu", "gelu", "swish", "softplus", "hard_sigmoid"]


def _dense_cases() -> None:
    rng = group_rng("dense")
    for i in range(6):
        rank_extra = [(), (int(rng.integers(1, 4)),), (int(rng.integers(1, 3)), int(rng.integers(1, 3)))][i % 3]
        fin, units = int(rng.integers(1, 7)), int(rng.integers(1, 6))
        act = str(rng.choice(ACTS))
        use_bias = bool(rng.random() < 0.7)
        x = normal(rng, *rank_extra, fin)
        if i == 0:
            x[1, 0] = NAN  # a NaN input poisons its whole output row
        case(
            "dense",
            f"{i}-in{x.shape[1:]}-u{units}-{act}-bias{use_bias}",
            [x],
            lambda u=units, a=act, b=use_bias: L.Dense(u, activation=a, use_bias=b),
            lambda xs, w, a=act: R.dense(xs[0], w["kernel"], w.get("bias"), activation=a),
        )


def _conv_config(rng: np.random.Generator, rank: int, allow_causal: bool) -> dict[str, Any]:
    k = tuple(int(v) for v in rng.integers(1, 4, size=rank))
    strides = tuple(int(v) for v in rng.integers(1, 3, size=rank))
    dil = tuple(int(v) for v in rng.integers(1, 3, size=rank)) if all(s == 1 for s in strides) else (1,) * rank
    pads = ["valid", "same", "causal"] if allow_causal else ["valid", "same"]
    return {"kernel_size": k, "strides": strides, "dilation_rate": dil, "padding": str(rng.choice(pads))}


def _conv_cases() -> None:
    rng = group_rng("conv")
    for rank in (1, 2):
        for i in range(7):
            cfg = _conv_config(rng, rank, allow_causal=rank == 1)
            if i == 0 and rank == 1:
                cfg = {"kernel_size": (3,), "strides": (2,), "dilation_rate": (1,), "padding": "causal"}
            spatial = tuple(int(v) for v in rng.integers(5, 9, size=rank))
            cin, filters = int(rng.integers(1, 4)), int(rng.integers(1, 4))
            act, use_bias = str(rng.choice(ACTS)), bool(rng.random() < 0.7)
            layer_cls = L.Conv1D if rank == 1 else L.Conv2D
            x = normal(rng, *spatial, cin)
            case(
                "conv",
                f"Conv{rank}D-{i}-{cfg}-x{x.shape[1:]}-f{filters}-{act}",
                [x],
                lambda cls=layer_cls, f=filters, cfg=cfg, a=act, b=use_bias: cls(f, activation=a, use_bias=b, **cfg),
                lambda xs, w, cfg=cfg, a=act: R.conv(
                    xs[0],
                    w["kernel"],
                    w.get("bias"),
                    cfg["strides"],
                    cfg["padding"],
                    cfg["dilation_rate"],
                    activation=a,
                ),
            )
        for i in range(4):
            cfg = _conv_config(rng, rank, allow_causal=False)
            if i == 0:  # Keras refuses strides > 1 with dilation > 1 for Conv, not for depthwise
                cfg["strides"], cfg["dilation_rate"] = (2,) * rank, (2,) * rank
            spatial = tuple(int(v) for v in rng.integers(6, 9, size=rank))
            cin, mult = int(rng.integers(1, 4)), int(rng.integers(1, 3))
            act, use_bias = str(rng.choice(ACTS)), bool(rng.random() < 0.7)
            x = normal(rng, *spatial, cin)
            dw_cls = L.DepthwiseConv1D if rank == 1 else L.DepthwiseConv2D
            case(
                "conv",
                f"DepthwiseConv{rank}D-{i}-{cfg}-x{x.shape[1:]}-m{mult}-{act}",
                [x],
                lambda cls=dw_cls, m=mult, cfg=cfg, a=act, b=use_bias: cls(
                    depth_multiplier=m, activation=a, use_bias=b, **cfg
                ),
                lambda xs, w, cfg=cfg, a=act: R.depthwise_conv(
                    xs[0],
                    w["kernel"],
                    w.get("bias"),
                    cfg["strides"],
                    cfg["padding"],
                    cfg["dilation_rate"],
                    activation=a,
                ),
            )
            filters = int(rng.integers(1, 4))
            sep_cls = L.SeparableConv1D if rank == 1 else L.SeparableConv2D
            case(
                "conv",
                f"SeparableConv{rank}D-{i}-{cfg}-x{x.shape[1:]}-m{mult}-f{filters}-{act}",
                [x],
                lambda cls=sep_cls, f=filters, m=mult, cfg=cfg, a=act, b=use_bias: cls(
                    f, depth_multiplier=m, activation=a, use_bias=b, **cfg
                ),
                lambda xs, w, cfg=cfg, a=act: R.separable_conv(
                    xs[0],
                    w["depthwise_kernel"],
                    w["pointwise_kernel"],
                    w.get("bias"),
                    cfg["strides"],
                    cfg["padding"],
                    cfg["dilation_rate"],
                    activation=a,
                ),
            )


def _pool_cases() -> None:
    rng = group_rng("pool")
    classes = {
        (1, "max"): "MaxPooling1D",
        (2, "max"): "MaxPooling2D",
        (1, "avg"): "AveragePooling1D",
        (2, "avg"): "AveragePooling2D",
    }
    for (rank, mode), cls in classes.items():
        for i in range(4):
            pool_size = tuple(int(v) for v in rng.integers(1, 4, size=rank))
            strides = None if i == 0 else tuple(int(v) for v in rng.integers(1, 4, size=rank))
            padding = ["valid", "same"][i % 2]
            x = normal(rng, *(int(v) for v in rng.integers(4, 9, size=rank)), int(rng.integers(1, 4)))
            if i == 3:  # NaN propagates through max (and avg); inf too
                x[0, 1] = NAN
                x[1, 0] = INF
                x[2, -1] = -INF
            case(
                "pool",
                f"{cls}-{i}-p{pool_size}-s{strides}-{padding}-x{x.shape[1:]}",
                [x],
                lambda cls=cls, p=pool_size, s=strides, pad=padding: getattr(L, cls)(
                    pool_size=p, strides=s, padding=pad
                ),
                _only(lambda v, p=pool_size, s=strides, pad=padding, m=mode: R.pool(v, p, s, pad, m)),
            )
    global_classes = {
        (1, "avg"): "GlobalAveragePooling1D",
        (2, "avg"): "GlobalAveragePooling2D",
        (1, "max"): "GlobalMaxPooling1D",
        (2, "max"): "GlobalMaxPooling2D",
    }
    for (rank, mode), cls in global_classes.items():
        for keepdims in (False, True):
            x = normal(rng, *(int(v) for v in rng.integers(2, 6, size=rank)), 3)
            x[0, 0, ..., 0] = NAN
            x[1, -1, ..., 1] = INF
            case(
                "pool",
                f"{cls}-keepdims{keepdims}",
                [x],
                lambda cls=cls, k=keepdims: getattr(L, cls)(keepdims=k),
                _only(lambda v, m=mode, k=keepdims: R.global_pool(v, m, k)),
            )


# normalization, embedding ---------------------------------------------------------------------


def _norm_cases() -> None:
    rng = group_rng("norm")
    for i, (shape, axis) in enumerate([((5,), -1), ((4, 3), -1), ((4, 3), 1), ((3, 4, 2), -1), ((3, 4, 2), 2)]):
        center, scale = (i != 1, i != 2) if i < 3 else (bool(rng.random() < 0.7), bool(rng.random() < 0.7))
        eps = float(rng.choice([1e-3, 1e-5, 0.1]))
        x = normal(rng, *shape, scale=2.0) + 1.0
        case(
            "norm",
            f"BatchNormalization-{i}-x{shape}-axis{axis}-c{center}-s{scale}-eps{eps}",
            [x],
            lambda a=axis, c=center, s=scale, e=eps: L.BatchNormalization(axis=a, center=c, scale=s, epsilon=e),
            lambda xs, w, a=axis, e=eps: R.batch_norm(
                xs[0], w.get("gamma"), w.get("beta"), w["moving_mean"], w["moving_variance"], e, a
            ),
        )
    ln_configs: list[tuple[tuple[int, ...], Any]] = [
        ((6,), -1),
        ((4, 5), -1),
        ((4, 5), 1),
        ((3, 4, 5), [1, 2]),
        ((3, 4, 5), [-2, -1]),
        ((3, 4, 5), [1, 3]),
        ((2, 3, 4), [-1, 1]),  # mixed signs: Keras reshapes gamma (4, 2) onto (1, 2, 1, 4)
    ]
    for i, (shape, axis) in enumerate(ln_configs):
        center, scale = bool(rng.random() < 0.7), bool(rng.random() < 0.7)
        if i < 2:
            center = scale = True
        eps = float(rng.choice([1e-3, 1e-5, 0.1]))
        x = normal(rng, *shape, scale=2.0) + 0.5
        case(
            "norm",
            f"LayerNormalization-{i}-x{shape}-axis{axis}-c{center}-s{scale}-eps{eps}",
            [x],
            lambda a=axis, c=center, s=scale, e=eps: L.LayerNormalization(axis=a, center=c, scale=s, epsilon=e),
            lambda xs, w, a=axis, e=eps: R.layer_norm(xs[0], w.get("gamma"), w.get("beta"), e, a),
        )
    for i, (shape, axis) in enumerate([((4, 5), -1), ((3, 4, 5), [1, 2])]):
        x = normal(rng, *shape, scale=2.0) + 0.5
        case(
            "norm",
            f"LayerNormalization-rms-{i}-x{shape}-axis{axis}",
            [x],
            lambda a=axis: L.LayerNormalization(axis=a, rms_scaling=True),
            lambda xs, w, a=axis: R.layer_norm(xs[0], w.get("gamma"), None, 1e-3, a, rms_scaling=True),
        )


def _embedding_cases() -> None:
    rng = group_rng("embedding")
    for i in range(3):
        vocab, dim, steps = int(rng.integers(2, 9)), i + 2, int(rng.integers(1, 8))
        ids = rng.integers(0, vocab, size=(BATCH, steps)).astype(np.float32)
        if i == 1:  # fractions truncate toward 0; [-vocab, -1] wraps; out of range and +-inf give NaN rows
            ids = rng.integers(-vocab - 2, vocab + 2, size=(BATCH, steps + 6)).astype(np.float32)
            ids[0, :6] = [1.7, -0.5, vocab - 0.01, NAN, INF, -INF]
        case(
            "embedding",
            f"{i}-vocab{vocab}-dim{dim}-ids{ids.shape[1:]}",
            [ids],
            lambda v=vocab, d=dim: L.Embedding(v, d),
            lambda xs, w: R.embedding(xs[0], w["embeddings"]),
        )


# recurrent ---------------------------------------------------------------------------------

RNN_ACTS = ["tanh", "relu", "sigmoid", "hard_sigmoid", "softsign", "linear"]


def _rnn_config(rng: np.random.Generator, kind: str, i: int) -> dict[str, Any]:
    cfg: dict[str, Any] = {
        "units": int(rng.integers(1, 5)),
        "return_sequences": bool(i % 2),
        "go_backwards": bool((i // 2) % 2),
        "use_bias": i != 3 and (i < 4 or bool(rng.random() < 0.75)),
        "activation": "tanh" if i == 0 else str(rng.choice(RNN_ACTS)),
    }
    if kind != "SimpleRNN":
        cfg["recurrent_activation"] = "sigmoid" if i == 0 else str(rng.choice(RNN_ACTS))
    if kind == "GRU":
        cfg["reset_after"] = bool(i % 3 != 2)
    return cfg


def _rnn_ref(kind: str, cfg: dict[str, Any]) -> Callable[[np.ndarray, Weights], np.ndarray]:
    fn = {"SimpleRNN": R.simple_rnn, "LSTM": R.lstm, "GRU": R.gru}[kind]
    kw = {k: v for k, v in cfg.items() if k != "units"}

    def run(x: np.ndarray, w: Weights) -> np.ndarray:
        out: np.ndarray = fn(x, w["kernel"], w["recurrent_kernel"], w.get("bias"), **kw)
        return out

    return run


def _rnn_cases() -> None:
    rng = group_rng("rnn")
    for kind in ("SimpleRNN", "LSTM", "GRU"):
        for i in range(6):
            cfg = _rnn_config(rng, kind, i)
            x = normal(rng, int(rng.integers(1, 6)), int(rng.integers(1, 4)))
            case(
                "rnn",
                f"{kind}-{i}-{cfg}-x{x.shape[1:]}",
                [x],
                lambda kind=kind, cfg=cfg: getattr(L, kind)(**cfg),
                lambda xs, w, kind=kind, cfg=cfg: _rnn_ref(kind, cfg)(xs[0], w),
            )


def _wrapper_cases() -> None:
    rng = group_rng("wrapper")
    modes: list[Any] = ["concat", "sum", "mul", "ave", None]
    for i, kind in enumerate(["LSTM", "GRU", "SimpleRNN", "LSTM", "GRU", "GRU"]):
        cfg = _rnn_config(rng, kind, i + 1)
        cfg["go_backwards"] = False
        cfg["return_sequences"] = bool(i % 2 == 0)
        mode = modes[i % len(modes)]
        x = normal(rng, int(rng.integers(1, 6)), int(rng.integers(1, 4)))

        def ref(xs: list[np.ndarray], w: Weights, kind: str = kind, cfg: dict[str, Any] = cfg, mode: Any = mode) -> Any:
            half = len(w.list) // 2
            fw = Weights(w.list[:half], w.paths[:half])
            bw = Weights(w.list[half:], w.paths[half:])
            backward_cfg = dict(cfg, go_backwards=True)
            return R.bidirectional(
                lambda v: _rnn_ref(kind, cfg)(v, fw),
                lambda v: _rnn_ref(kind, backward_cfg)(v, bw),
                xs[0],
                mode,
                cfg["return_sequences"],
            )

        case(
            "wrapper",
            f"Bidirectional-{kind}-{i}-{mode}-{cfg}",
            [x],
            lambda kind=kind, cfg=cfg, mode=mode: L.Bidirectional(getattr(L, kind)(**cfg), merge_mode=mode),
            ref,
        )
    x = normal(rng, 4, 3, 2)
    case(
        "wrapper",
        "TimeDistributed-Dense",
        [x],
        lambda: L.TimeDistributed(L.Dense(3, activation="tanh")),
        lambda xs, w: R.time_distributed(lambda v: R.dense(v, w["kernel"], w["bias"], activation="tanh"), xs[0]),
    )
    x = normal(rng, 3, 5, 4, 2)
    case(
        "wrapper",
        "TimeDistributed-Conv2D",
        [x],
        lambda: L.TimeDistributed(L.Conv2D(2, (2, 3), padding="same", strides=(1, 2))),
        lambda xs, w: R.time_distributed(lambda v: R.conv(v, w["kernel"], w["bias"], (1, 2), "same"), xs[0]),
    )
    x = normal(rng, 3, 6, 2)
    case(
        "wrapper",
        "TimeDistributed-MaxPooling1D",
        [x],
        lambda: L.TimeDistributed(L.MaxPooling1D(2)),
        lambda xs, w: R.time_distributed(lambda v: R.pool(v, 2), xs[0]),
    )


# merges and reshaping ------------------------------------------------------------------------


def _merge_cases() -> None:
    rng = group_rng("merge")
    merges: dict[str, tuple[Any, Callable[[Sequence[np.ndarray]], np.ndarray], int]] = {
        "Add": (L.Add, R.add, 3),
        "Subtract": (L.Subtract, R.subtract, 2),
        "Multiply": (L.Multiply, R.multiply, 3),
        "Average": (L.Average, R.average, 3),
        "Maximum": (L.Maximum, R.maximum, 3),
        "Minimum": (L.Minimum, R.minimum, 2),
    }
    for name, (cls, fn, n) in merges.items():
        shape = tuple(int(v) for v in rng.integers(1, 5, size=int(rng.integers(1, 3))))
        xs = [normal(rng, *shape) for _ in range(n)]
        xs[0].reshape(BATCH, -1)[0, 0] = NAN
        xs[1].reshape(BATCH, -1)[1, -1] = INF
        case("merge", f"{name}-{n}x{shape}", xs, cls, lambda xs, w, fn=fn: fn(xs))
    # Lower-rank inputs are expanded at axis 1 (not numpy's leading axes).
    xs = [normal(rng, 5), normal(rng, 3, 5), normal(rng, 2, 3, 5)]
    case("merge", "Add-mixed-ranks", xs, L.Add, lambda xs, w: R.add(xs))
    case("merge", "Maximum-mixed-ranks", xs[:2], L.Maximum, lambda xs, w: R.maximum(xs))
    for axis in (-1, 1, 2):
        xs = []
        for _ in range(3):
            shape = [3, 4]  # per-sample shape; the concatenated axis gets a random size
            shape[(axis - 1) if axis > 0 else axis] = int(rng.integers(1, 5))
            xs.append(normal(rng, *shape))
        case(
            "merge",
            f"Concatenate-axis{axis}",
            xs,
            lambda a=axis: L.Concatenate(axis=a),
            lambda xs, w, a=axis: R.concatenate(xs, a),
        )


def _reshape_cases() -> None:
    rng = group_rng("reshape")
    x = normal(rng, 2, 3, 4)
    for target in [(6, 4), (-1, 2), (4, 3, 2), (24,)]:
        case(
            "reshape",
            f"Reshape-{target}",
            [x],
            lambda t=target: L.Reshape(t),
            _only(lambda v, t=target: R.reshape(v, t)),
        )
    case("reshape", "Flatten", [x], L.Flatten, _only(R.flatten))
    for dims in [(2, 1, 3), (3, 2, 1), (1, 3, 2)]:
        case(
            "reshape",
            f"Permute-{dims}",
            [x],
            lambda d=dims: L.Permute(d),
            _only(lambda v, d=dims: R.permute(v, d)),
        )
    x2 = normal(rng, 5)
    n = int(rng.integers(1, 5))
    case("reshape", f"RepeatVector-{n}", [x2], lambda: L.RepeatVector(n), _only(lambda v: R.repeat_vector(v, n)))


for _build in (
    _activation_cases,
    _activation_layer_cases,
    _dense_cases,
    _conv_cases,
    _pool_cases,
    _norm_cases,
    _embedding_cases,
    _rnn_cases,
    _wrapper_cases,
    _merge_cases,
    _reshape_cases,
):
    _build()
ALL_CASES = CASES


# --------------------------------------------------------------------------------------------
# tests against Keras
# --------------------------------------------------------------------------------------------


def _reference(c: Case, dtype: Any) -> list[np.ndarray]:
    assert c.weights is not None
    out = c.ref([a.astype(dtype) for a in c.inputs], c.weights.astype(dtype))
    return [np.asarray(o) for o in _flat(out)]


@pytest.mark.parametrize("c", ALL_CASES, ids=[c.id for c in ALL_CASES])
def test_matches_keras_float64(c: Case) -> None:
    preds = predict_group(c.group)[c.id]
    expected = _reference(c, np.float64)
    assert len(preds) == len(expected)
    for i, (p, e) in enumerate(zip(preds, expected, strict=True)):
        assert e.dtype == np.float64, f"{c.id}: float64 inputs gave {e.dtype}"
        assert_matches(p, e, f"{c.id} output {i}")


@pytest.mark.parametrize("c", ALL_CASES, ids=[c.id for c in ALL_CASES])
def test_float32_path_matches_keras(c: Case) -> None:
    preds = predict_group(c.group)[c.id]
    expected = _reference(c, np.float32)
    for i, (p, e) in enumerate(zip(preds, expected, strict=True)):
        assert e.dtype == np.float32, f"{c.id}: float32 inputs gave {e.dtype}"
        assert_matches(p, e, f"{c.id} output {i} (float32)", RTOL32, ATOL32)


def test_every_public_function_is_exercised() -> None:
    """Each public function is called by some Keras case, directly or by its activation name."""
    sources = "\n".join(inspect.getsource(f) for f in _CASE_BUILDERS)
    called = set(re.findall(r"\bR\.(\w+)", sources))
    named = set(re.findall(r'"(\w+)"', sources))
    for key, fn in R.ACTIVATIONS.items():
        if key in named:
            called.add(fn.__name__)
    unused = [n for n in R.__all__ if callable(getattr(R, n)) and n not in called and n not in _TESTED_ELSEWHERE]
    assert not unused, f"no Keras case calls {unused}"
    assert set(R.ACTIVATIONS) <= named, f"activations without a case: {set(R.ACTIVATIONS) - named}"


_CASE_BUILDERS = [
    _activation_cases,
    _activation_layer_cases,
    _dense_cases,
    _conv_config,
    _conv_cases,
    _pool_cases,
    _norm_cases,
    _embedding_cases,
    _rnn_ref,
    _rnn_cases,
    _wrapper_cases,
    _merge_cases,
    _reshape_cases,
]
_TESTED_ELSEWHERE = {
    "erfc",  # test_erfc_matches_math_erfc
    "forward", "apply_layer",  # whole models: test_compiled_layers.py, test_converter_fixtures.py
}


# --------------------------------------------------------------------------------------------
# properties that need no Keras model
# --------------------------------------------------------------------------------------------


def test_erfc_matches_math_erfc() -> None:
    x = np.concatenate([np.linspace(-27.0, 27.0, 20001), [0.0, -0.0, 2.0, -2.0, INF, -INF, NAN]])
    expected = np.array([math.erfc(v) if not math.isnan(v) else NAN for v in x])
    got = R.erfc(x)
    assert got.dtype == np.float64
    np.testing.assert_allclose(got, expected, rtol=1e-13, atol=1e-300, equal_nan=True)
    got32 = R.erfc(x.astype(np.float32))
    expected32 = np.array([math.erfc(float(v)) if not math.isnan(v) else NAN for v in x.astype(np.float32)])
    assert got32.dtype == np.float32
    np.testing.assert_allclose(got32, expected32.astype(np.float32), rtol=2e-7, atol=1e-38, equal_nan=True)


def test_gelu_matches_keras_ops_on_a_wide_range() -> None:
    # jax runs float32 here (x64 is off). The exact form keeps its relative accuracy in the far
    # negative tail, so the float64 reference must match it there too; the tanh form cancels
    # (1 + tanh(-big)) in float32, so it is compared float32 to float32.
    x = np.linspace(-12.0, 12.0, 4001).astype(np.float32)
    exact = np.asarray(keras.ops.gelu(x, approximate=False))
    np.testing.assert_allclose(R.gelu(x.astype(np.float64)), exact, rtol=1e-4, atol=1e-37)
    approx = np.asarray(keras.ops.gelu(x, approximate=True))
    np.testing.assert_allclose(R.gelu(x, approximate=True), approx, rtol=1e-5, atol=1e-6)


def test_hard_sigmoid_forms() -> None:
    x = np.linspace(-5.0, 5.0, 1001)
    keras3 = np.asarray(keras.activations.hard_sigmoid(x))  # float32 in jax
    np.testing.assert_allclose(R.hard_sigmoid(x), keras3, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(R.hard_sigmoid(x, slope=1.0 / 6.0, offset=0.5), keras3, rtol=1e-6, atol=1e-7)
    keras2 = R.hard_sigmoid(x, keras_major=2)
    np.testing.assert_array_equal(keras2, R.hard_sigmoid(x, slope=0.2, offset=0.5))
    np.testing.assert_array_equal(keras2, R.activation(x, "hard_sigmoid", keras_major=2))
    # The Keras 2 / TF.js form saturates at |x| = 2.5, the Keras 3 form at 3.
    assert keras2[np.searchsorted(x, 2.5)] == 1.0 and R.hard_sigmoid(np.array([2.5]))[0] < 1.0


def test_thresholded_relu_keras2_semantics() -> None:
    x = np.array([NAN, -INF, INF, -1.0, 0.5, 1.0, 1.5])
    got = R.thresholded_relu(x, 1.0)
    # Keras 2 / TF.js multiply by (x > theta): NaN and -inf become NaN, not 0 as in Keras 3's ReLU(threshold).
    assert np.isnan(got[0]) and np.isnan(got[1]) and got[2] == INF
    np.testing.assert_array_equal(got[3:], np.where(x[3:] > 1.0, x[3:], 0.0))
    keras3 = np.asarray(keras.activations.relu(x, threshold=1.0))
    assert keras3[0] == 0.0 and keras3[1] == 0.0
    np.testing.assert_array_equal(R.relu(x, threshold=1.0), keras3)
    assert np.isnan(R.relu(x, threshold=1.0, keras_major=2)[0])


def test_dtype_follows_inputs() -> None:
    rng = np.random.default_rng(7)
    x4 = rng.standard_normal((2, 5, 5, 3))
    k = rng.standard_normal((3, 3, 3, 2))
    dk = rng.standard_normal((3, 3, 3, 2))
    pk = rng.standard_normal((1, 1, 6, 4))
    seq = rng.standard_normal((2, 4, 3))
    calls: list[Callable[[Any], np.ndarray]] = [
        lambda t: R.conv(x4.astype(t), k.astype(t), None, 1, "same"),
        lambda t: R.depthwise_conv(x4.astype(t), dk.astype(t)),
        lambda t: R.separable_conv(x4.astype(t), dk.astype(t), pk.astype(t)),
        lambda t: R.pool(x4.astype(t), 2, padding="same", mode="avg"),
        lambda t: R.global_pool(x4.astype(t), "max"),
        lambda t: R.dense(seq.astype(t), k[0, 0].astype(t)),
        lambda t: R.lstm(seq.astype(t), rng.standard_normal((3, 8)).astype(t), rng.standard_normal((2, 8)).astype(t)),
        lambda t: R.gru(seq.astype(t), rng.standard_normal((3, 6)).astype(t), rng.standard_normal((2, 6)).astype(t)),
        lambda t: R.embedding(np.array([[0, 1]]), rng.standard_normal((3, 2)).astype(t)),
        lambda t: R.layer_norm(seq.astype(t), None, None),
    ]
    calls += [lambda t, n=n: R.activation(seq.astype(t), n) for n in R.ACTIVATIONS if n not in ("prelu",)]
    for call in calls:
        for dtype in (np.float32, np.float64):
            assert call(dtype).dtype == dtype


def test_bidirectional_none_returns_both_directions_aligned() -> None:
    x = np.arange(2 * 4 * 1, dtype=np.float64).reshape(2, 4, 1)
    fwd, bwd = R.bidirectional(lambda v: v * 2.0, lambda v: v[:, ::-1], x, None, return_sequences=True)
    np.testing.assert_array_equal(fwd, 2.0 * x)
    np.testing.assert_array_equal(bwd, x)
