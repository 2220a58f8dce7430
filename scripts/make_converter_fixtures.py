#!/usr/bin/env python3
"""Make TF.js Layers fixtures with the OFFICIAL converter (tensorflowjs_converter) from Keras 2 models.

Run it through scripts/make_converter_fixtures.sh, which sets up the pinned toolchain venv
(scripts/converter-requirements.txt: tensorflowjs 4.22.0, tensorflow 2.19.0, tf-keras 2.19.0, ...):

    scripts/make_converter_fixtures.sh [--only NAME ...]
    /work/convvenv/bin/python scripts/make_converter_fixtures.py [--only NAME ...] [--out DIR]

It never runs in the project's dev venv (it needs tensorflow + tf_keras; the project uses keras 3).

For every fixture it builds a small tf_keras (Keras 2) model, gives it seeded random weights
(numpy default_rng, no training), saves it as Keras 2 HDF5 and runs

    tensorflowjs_converter --input_format keras [flags] model.h5 tests/fixtures/converter/<name>/

then writes, next to the converter's model.json + group1-shard*of*.bin:

* golden.npz: ``x`` (seeded inputs) and ``y`` (tf_keras ``model.predict(x)``); a model with
  several inputs/outputs stores ``x0, x1, ...`` / ``y0, y1, ...`` and an ``inputs.json`` that names
  them (model input/output names, dtypes, shapes);
* golden_dequantized.npz (quantized fixtures only): same ``x``; ``y`` predicted by tf_keras after
  its weights were replaced by the dequantized manifest weights (uint8/uint16: q*scale+min,
  float16: widened to float32), i.e. what a correct loader of the quantized model must output.

Finally tests/fixtures/converter/index.json lists every fixture (description, converter flags,
golden keys). The script is deterministic: a second run gives byte-identical files.
"""

from __future__ import annotations

import os

# Keras 2 everywhere: tf.keras -> tf_keras in this process and in the converter subprocess.
os.environ["TF_USE_LEGACY_KERAS"] = "1"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ["TF_DETERMINISTIC_OPS"] = "1"
os.environ["CUDA_VISIBLE_DEVICES"] = ""

import argparse
import importlib.metadata
import io
import json
import shutil
import subprocess
import sys
import tempfile
import warnings
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import tensorflow as tf
import tf_keras as keras
from tf_keras import layers

warnings.filterwarnings("ignore", message="You are saving your model as an HDF5 file")
tf.get_logger().setLevel("ERROR")
tf.autograph.set_verbosity(0)
tf.config.threading.set_intra_op_parallelism_threads(1)
tf.config.threading.set_inter_op_parallelism_threads(1)
tf.config.experimental.enable_op_determinism()

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "tests" / "fixtures" / "converter"
CONVERTER = Path(sys.executable).parent / "tensorflowjs_converter"
ROWS = 16  # golden rows per fixture


# --------------------------------------------------------------------------------------------
# seeded weights and inputs
# --------------------------------------------------------------------------------------------
def seed_of(name: str) -> int:
    return zlib.crc32(name.encode())


def seeded_weights(model: keras.Model, seed: int) -> list[np.ndarray]:
    """One value per model weight, drawn from default_rng(seed) in model.weights order.

    Kernels get uniform(+-sqrt(3/fan_in)) (unit-variance outputs, softmaxes not saturated), biases
    and betas small offsets, gammas and moving variances positive values away from 1, moving means
    non-zero, embeddings N(0, 1), PReLU alphas in (0.05, 0.5).
    """
    rng = np.random.default_rng(seed)
    out = []
    for w in model.weights:
        name = w.name.split(":")[0]
        leaf = name.rsplit("/", 1)[-1]
        shape = tuple(int(d) for d in w.shape)
        if leaf in ("gamma",):
            v = rng.uniform(0.5, 1.5, shape)
        elif leaf == "moving_variance":
            v = rng.uniform(0.5, 2.0, shape)
        elif leaf == "moving_mean":
            v = rng.normal(0.0, 0.5, shape)
        elif leaf in ("bias", "beta"):
            v = rng.uniform(-0.2, 0.2, shape)
        elif leaf == "alpha":
            v = rng.uniform(0.05, 0.5, shape)
        elif leaf == "embeddings":
            v = rng.normal(0.0, 1.0, shape)
        else:  # kernel, recurrent_kernel, depthwise_kernel, pointwise_kernel, ...
            fan_in = int(np.prod(shape[:-1])) if len(shape) > 1 else 1
            if leaf == "depthwise_kernel":  # (kh, kw, in, mult): each output sees kh*kw values
                fan_in = int(np.prod(shape[:-2]))
            lim = np.sqrt(3.0 / max(fan_in, 1))
            v = rng.uniform(-lim, lim, shape)
        out.append(np.asarray(v, dtype=w.dtype.as_numpy_dtype))
    return out


def make_inputs(model: keras.Model, seed: int, int_high: dict[str, int], scale: float) -> list[np.ndarray]:
    rng = np.random.default_rng(seed + 1)
    xs = []
    for inp in model.inputs:
        shape = (ROWS, *[int(d) for d in inp.shape[1:]])
        if inp.dtype.is_integer:
            xs.append(rng.integers(0, int_high[inp.name.split(":")[0]], shape, dtype=np.int32))
        else:
            xs.append((rng.normal(0.0, 1.0, shape) * scale).astype(np.float32))
    return xs


# --------------------------------------------------------------------------------------------
# models (each builder runs after keras.backend.clear_session(), so layer names restart at
# dense, dense_1, ... like in a fresh Python session)
# --------------------------------------------------------------------------------------------
def dense_mlp() -> keras.Model:
    return keras.Sequential(
        [layers.Dense(16, activation="relu", input_shape=(13,)), layers.Dense(3, activation="softmax")]
    )


def cnn() -> keras.Model:
    return keras.Sequential(
        [
            keras.Input(shape=(8, 8, 1)),
            layers.Conv2D(4, 3, padding="same", activation="relu"),
            layers.MaxPooling2D(2),
            layers.Conv2D(6, 2, strides=2, padding="valid"),
            layers.Flatten(),
            layers.Dense(3, activation="softmax"),
        ]
    )


def separable() -> keras.Model:
    return keras.Sequential(
        [
            keras.Input(shape=(8, 8, 2)),
            layers.SeparableConv2D(4, 3, padding="same", depth_multiplier=2, activation="relu"),
            layers.DepthwiseConv2D(3, depth_multiplier=2, padding="valid"),
            layers.AveragePooling2D(2, padding="same"),
            layers.GlobalAveragePooling2D(),
            layers.Dense(3, activation="softmax"),
        ]
    )


def depthwise() -> keras.Model:
    return keras.Sequential(
        [
            keras.Input(shape=(8, 8, 2)),
            layers.DepthwiseConv2D(3, depth_multiplier=2, padding="same", activation="relu"),
            layers.Conv2D(4, 1),
            layers.AveragePooling2D(3, strides=2, padding="same"),
            layers.GlobalAveragePooling2D(),
            layers.Dense(3, activation="softmax"),
        ]
    )


def conv1d() -> keras.Model:
    return keras.Sequential(
        [
            keras.Input(shape=(16, 3)),
            layers.Conv1D(4, 3, padding="causal", dilation_rate=2, activation="relu"),
            layers.GlobalMaxPooling1D(),
            layers.Dense(2),
        ]
    )


def conv1d_same() -> keras.Model:
    return keras.Sequential(
        [
            keras.Input(shape=(16, 3)),
            layers.Conv1D(4, 3, padding="same", dilation_rate=2, activation="relu"),
            layers.Conv1D(5, 3, strides=2, padding="valid"),
            layers.MaxPooling1D(2),
            layers.GlobalAveragePooling1D(),
            layers.Dense(2),
        ]
    )


def elu_alpha() -> keras.Model:
    return keras.Sequential([keras.Input(shape=(4,)), layers.Dense(3), layers.ELU(alpha=0.5)])


def lstm() -> keras.Model:
    return keras.Sequential(
        [
            keras.Input(shape=(6, 4)),
            layers.LSTM(5, return_sequences=True),
            layers.LSTM(3),
            layers.Dense(2),
        ]
    )


def gru_reset_after() -> keras.Model:
    return keras.Sequential([keras.Input(shape=(6, 4)), layers.GRU(5, reset_after=True), layers.Dense(2)])


def gru_classic() -> keras.Model:
    return keras.Sequential([keras.Input(shape=(6, 4)), layers.GRU(5, reset_after=False), layers.Dense(2)])


def simple_rnn() -> keras.Model:
    return keras.Sequential([keras.Input(shape=(6, 4)), layers.SimpleRNN(5), layers.Dense(2)])


def bidirectional() -> keras.Model:
    return keras.Sequential(
        [keras.Input(shape=(6, 4)), layers.Bidirectional(layers.LSTM(4), merge_mode="concat"), layers.Dense(2)]
    )


def time_distributed() -> keras.Model:
    return keras.Sequential(
        [
            keras.Input(shape=(5, 3)),
            layers.TimeDistributed(layers.Dense(4, activation="relu")),
            layers.Flatten(),
            layers.Dense(2),
        ]
    )


def embedding() -> keras.Model:
    return keras.Sequential(
        [
            keras.Input(shape=(7,), dtype="int32", name="ids"),
            layers.Embedding(20, 4),
            layers.GlobalAveragePooling1D(),
            layers.Dense(3),
        ]
    )


def norm() -> keras.Model:
    return keras.Sequential(
        [
            keras.Input(shape=(6,)),
            layers.Dense(8),
            layers.BatchNormalization(),
            layers.LayerNormalization(),
            layers.Dense(3),
        ]
    )


def functional_multi() -> keras.Model:
    features = keras.Input(shape=(10,), name="features")
    tokens = keras.Input(shape=(12,), dtype="int32", name="tokens")
    a = layers.Dense(8, activation="relu")(features)
    a = layers.BatchNormalization()(a)
    b = layers.Embedding(30, 6)(tokens)
    b = layers.Conv1D(8, 3, padding="same", activation="relu")(b)
    b = layers.LSTM(6)(b)
    h = layers.Concatenate()([a, b])
    h = layers.Dense(8, activation="tanh")(h)
    probs = layers.Dense(3, activation="softmax", name="class_probs")(h)
    score = layers.Dense(1, name="score")(h)
    return keras.Model([features, tokens], [probs, score], name="functional_multi")


# Dense activations tf_keras serializes by a name tfjs 4.22 registers (tf_keras 'silu' is written
# as 'swish'; 'exponential' is left out: tfjs has no such activation).
ACTIVATIONS = [
    "linear", "relu", "relu6", "elu", "selu", "sigmoid", "hard_sigmoid", "tanh", "softplus",
    "softsign", "swish", "gelu", "mish", "softmax", "log_softmax",
]  # fmt: skip
ACTIVATION_UNITS = 3


def activations() -> keras.Model:
    x = keras.Input(shape=(5,))
    branches = [layers.Dense(ACTIVATION_UNITS, activation=a, name=f"dense_{a}")(x) for a in ACTIVATIONS]
    pre = layers.Dense(ACTIVATION_UNITS, name="dense_pre")(x)
    branches.append(layers.LeakyReLU()(pre))  # Keras 2 default alpha=0.3
    branches.append(layers.LeakyReLU(alpha=0.1)(pre))
    branches.append(layers.PReLU()(pre))
    branches.append(layers.ReLU(max_value=6.0)(pre))
    branches.append(layers.ELU()(pre))  # alpha 1.0: tfjs rejects any other (see elu_alpha)
    branches.append(layers.Softmax()(pre))
    return keras.Model(x, layers.Concatenate()(branches), name="activations")


ACTIVATION_COLUMNS = [f"Dense({ACTIVATION_UNITS}, activation='{a}')" for a in ACTIVATIONS] + [
    "LeakyReLU() (alpha 0.3) on dense_pre",
    "LeakyReLU(alpha=0.1) on dense_pre",
    "PReLU() (seeded alpha) on dense_pre",
    "ReLU(max_value=6.0) on dense_pre",
    "ELU() (alpha 1.0) on dense_pre",
    "Softmax() on dense_pre",
]


# --------------------------------------------------------------------------------------------
# fixture table
# --------------------------------------------------------------------------------------------
@dataclass
class Fixture:
    name: str
    model: str  # key into MODELS; fixtures sharing a model share its weights and golden
    description: str
    flags: list[str] = field(default_factory=list)  # extra converter flags (after the paths)
    quantized: bool = False


MODELS: dict[str, tuple[Callable[[], keras.Model], dict[str, int], float]] = {
    # name: (builder, {int input name: exclusive upper bound}, float input scale)
    "dense_mlp": (dense_mlp, {}, 1.0),
    "cnn": (cnn, {}, 1.0),
    "separable": (separable, {}, 1.0),
    "depthwise": (depthwise, {}, 1.0),
    "conv1d": (conv1d, {}, 1.0),
    "conv1d_same": (conv1d_same, {}, 1.0),
    "lstm": (lstm, {}, 1.0),
    "gru_reset_after": (gru_reset_after, {}, 1.0),
    "gru_classic": (gru_classic, {}, 1.0),
    "simple_rnn": (simple_rnn, {}, 1.0),
    "bidirectional": (bidirectional, {}, 1.0),
    "time_distributed": (time_distributed, {}, 1.0),
    "embedding": (embedding, {"ids": 20}, 1.0),
    "norm": (norm, {}, 1.0),
    "functional_multi": (functional_multi, {"tokens": 30}, 1.0),
    "activations": (activations, {}, 4.0),
    "elu_alpha": (elu_alpha, {}, 4.0),
}

FIXTURES = [
    Fixture("dense_mlp", "dense_mlp", "Sequential Dense(13->16 relu) -> Dense(3 softmax), Dense(input_shape=...) "
            "so the Keras 2 config carries batch_input_shape (InputLayer and first Dense)"),
    Fixture("dense_multishard", "dense_mlp", "dense_mlp converted with --weight_shard_size_bytes 400: "
            "3 shards (400+400+300 bytes), weights straddle shard boundaries", ["--weight_shard_size_bytes", "400"]),
    Fixture("dense_float16", "dense_mlp", "dense_mlp converted with --quantize_float16 (all weights)",
            ["--quantize_float16"], quantized=True),
    Fixture("dense_uint8", "dense_mlp", "dense_mlp converted with --quantize_uint8 (all weights)",
            ["--quantize_uint8"], quantized=True),
    Fixture("dense_uint16", "dense_mlp", "dense_mlp converted with --quantize_uint16 (all weights)",
            ["--quantize_uint16"], quantized=True),
    Fixture("cnn", "cnn", "Conv2D(4,3,same,relu) -> MaxPooling2D(2) -> Conv2D(6,2,strides 2,valid) -> Flatten "
            "-> Dense(3 softmax) on 8x8x1"),
    Fixture("separable", "separable", "SeparableConv2D(4,3,same,depth_multiplier 2,relu) -> DepthwiseConv2D(3,"
            "depth_multiplier 2,valid) -> AveragePooling2D(2,same) -> GlobalAveragePooling2D -> Dense(3 softmax) "
            "on 8x8x2"),
    Fixture("depthwise", "depthwise", "DepthwiseConv2D(3,depth_multiplier 2,same,relu) -> Conv2D(4,1) -> "
            "AveragePooling2D(3,strides 2,same) -> GlobalAveragePooling2D -> Dense(3 softmax) on 8x8x2 (the "
            "separable fixture's other layers, without SeparableConv2D)"),
    Fixture("conv1d", "conv1d", "Conv1D(4,3,causal,dilation 2,relu) -> GlobalMaxPooling1D -> Dense(2) on 16x3"),
    Fixture("conv1d_same", "conv1d_same", "Conv1D(4,3,same,dilation 2,relu) -> Conv1D(5,3,strides 2,valid) -> "
            "MaxPooling1D(2) -> GlobalAveragePooling1D -> Dense(2) on 16x3 (Conv1D without causal padding)"),
    Fixture("lstm", "lstm", "LSTM(5, return_sequences) -> LSTM(3) -> Dense(2) on 6x4"),
    Fixture("gru_reset_after", "gru_reset_after", "GRU(5, reset_after=True) (Keras 2 default) -> Dense(2) on 6x4"),
    Fixture("gru_classic", "gru_classic", "GRU(5, reset_after=False) -> Dense(2) on 6x4"),
    Fixture("simple_rnn", "simple_rnn", "SimpleRNN(5) -> Dense(2) on 6x4"),
    Fixture("bidirectional", "bidirectional", "Bidirectional(LSTM(4), merge_mode concat) -> Dense(2) on 6x4"),
    Fixture("time_distributed", "time_distributed", "TimeDistributed(Dense(4 relu)) -> Flatten -> Dense(2) on 5x3"),
    Fixture("embedding", "embedding", "Embedding(20,4) -> GlobalAveragePooling1D -> Dense(3), int32 "
            "input of length 7 (ids 0..19)"),
    Fixture("norm", "norm", "Dense(8) -> BatchNormalization (seeded moving mean/variance, gamma, beta) -> "
            "LayerNormalization -> Dense(3) on 6 features"),
    Fixture("functional_multi", "functional_multi", "functional, inputs features (10 float32) and tokens "
            "(12 int32 ids 0..29); Dense+BatchNormalization on features, Embedding->Conv1D->LSTM on tokens, "
            "Concatenate -> Dense(8 tanh) -> outputs class_probs (Dense 3 softmax) and score (Dense 1)"),
    Fixture("activations", "activations", "functional, one input (5 float32, N(0,4)); one Dense(3) branch per "
            "activation plus LeakyReLU/PReLU/ReLU/ELU/Softmax layers, concatenated (columns: see index.json)"),
    Fixture("elu_alpha", "elu_alpha", "Dense(3) -> ELU(alpha=0.5) layer on 4 float32 features, N(0,4)"),
]  # fmt: skip


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------
def save_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """np.savez without timestamps: stored zip entries dated 1980-01-01, so reruns are byte-identical."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as zf:
        for key, arr in arrays.items():
            buf = io.BytesIO()
            np.lib.format.write_array(buf, np.ascontiguousarray(arr), allow_pickle=False)
            info = zipfile.ZipInfo(f"{key}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_STORED
            info.external_attr = 0o644 << 16
            info.create_system = 3
            zf.writestr(info, buf.getvalue())


def as_list(y) -> list[np.ndarray]:
    return [np.asarray(a, dtype=np.float32) for a in (y if isinstance(y, (list, tuple)) else [y])]


def golden_arrays(xs: list[np.ndarray], ys: list[np.ndarray]) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    if len(xs) == 1:
        out["x"] = xs[0]
    else:
        out.update({f"x{i}": x for i, x in enumerate(xs)})
    if len(ys) == 1:
        out["y"] = ys[0]
    else:
        out.update({f"y{i}": y for i, y in enumerate(ys)})
    return out


def predict(model: keras.Model, xs: list[np.ndarray]) -> list[np.ndarray]:
    return as_list(model.predict(xs if len(xs) > 1 else xs[0], batch_size=ROWS, verbose=0))


_DTYPES = {"float32": np.float32, "int32": np.int32, "uint8": np.uint8, "uint16": np.uint16, "float16": np.float16}


def dequantized_manifest_weights(fixture_dir: Path) -> dict[str, np.ndarray]:
    """Read model.json + shards the way tfjs does and dequantize: {weight name: float array}."""
    model_json = json.loads((fixture_dir / "model.json").read_text())
    out = {}
    for group in model_json["weightsManifest"]:
        data = b"".join((fixture_dir / p).read_bytes() for p in group["paths"])
        off = 0
        for spec in group["weights"]:
            q = spec.get("quantization")
            stored = _DTYPES[q["dtype"] if q else spec["dtype"]]
            n = int(np.prod(spec["shape"])) if spec["shape"] else 1
            raw = np.frombuffer(data, dtype=stored, count=n, offset=off).reshape(spec["shape"])
            off += n * np.dtype(stored).itemsize
            if q and q["dtype"] in ("uint8", "uint16"):
                val = (raw.astype(np.float64) * q["scale"] + q["min"]).astype(np.float32)
            else:
                val = raw.astype(_DTYPES[spec["dtype"]])
            out[spec["name"]] = val
    return out


def run_converter(h5: Path, out_dir: Path, flags: list[str]) -> None:
    if out_dir.exists():
        shutil.rmtree(out_dir)
    # Flags go after the positional paths: --quantize_* take an optional value and would swallow
    # the input path if written before it.
    cmd = [str(CONVERTER), "--input_format", "keras", "--output_format", "tfjs_layers_model", str(h5), str(out_dir)]
    cmd += flags
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout + proc.stderr)
        raise SystemExit(f"tensorflowjs_converter failed for {out_dir.name}: {' '.join(cmd)}")


def io_description(model: keras.Model, xs: list[np.ndarray], ys: list[np.ndarray]) -> dict:
    def spec(key: str, name: str, arr: np.ndarray, shape) -> dict:
        return {"key": key, "name": name, "dtype": str(arr.dtype), "shape": [None, *[int(d) for d in shape[1:]]]}

    x_keys = ["x"] if len(xs) == 1 else [f"x{i}" for i in range(len(xs))]
    y_keys = ["y"] if len(ys) == 1 else [f"y{i}" for i in range(len(ys))]
    return {
        "inputs": [
            spec(k, n, a, t.shape) for k, n, a, t in zip(x_keys, model.input_names, xs, model.inputs, strict=True)
        ],
        "outputs": [
            spec(k, n, a, t.shape) for k, n, a, t in zip(y_keys, model.output_names, ys, model.outputs, strict=True)
        ],
    }


def write_json(path: Path, obj) -> None:
    path.write_text(json.dumps(obj, indent=2, sort_keys=True) + "\n")


# --------------------------------------------------------------------------------------------
def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", nargs="*", help="fixture names (default: all)")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()
    fixtures = [f for f in FIXTURES if not args.only or f.name in args.only]
    unknown = set(args.only or []) - {f.name for f in FIXTURES}
    if unknown:
        raise SystemExit(f"unknown fixtures: {sorted(unknown)}")
    if not CONVERTER.exists():
        raise SystemExit(f"{CONVERTER} missing: run scripts/make_converter_fixtures.sh (pinned venv)")
    args.out.mkdir(parents=True, exist_ok=True)

    built: dict[str, tuple[keras.Model, Path, list[np.ndarray], list[np.ndarray]]] = {}
    index_entries = {}
    with tempfile.TemporaryDirectory() as tmp:
        for fx in fixtures:
            if fx.model not in built:
                builder, int_high, scale = MODELS[fx.model]
                keras.backend.clear_session()
                tf.random.set_seed(0)
                model = builder()
                model.set_weights(seeded_weights(model, seed_of(fx.model)))
                h5 = Path(tmp) / f"{fx.model}.h5"
                model.save(h5, save_format="h5", include_optimizer=False)
                xs = make_inputs(model, seed_of(fx.model), int_high, scale)
                ys = predict(model, xs)
                built[fx.model] = (model, h5, xs, ys)
            model, h5, xs, ys = built[fx.model]
            out_dir = args.out / fx.name
            print(f"[{fx.name}] converting {fx.model}.h5 {' '.join(fx.flags)}", flush=True)
            run_converter(h5, out_dir, fx.flags)
            save_npz(out_dir / "golden.npz", golden_arrays(xs, ys))
            files = ["model.json", *sorted(p.name for p in out_dir.glob("*.bin")), "golden.npz"]
            if fx.quantized:
                deq = dequantized_manifest_weights(out_dir)
                original = model.get_weights()
                model.set_weights([deq[w.name.split(":")[0]] for w in model.weights])
                ys_deq = predict(model, xs)
                model.set_weights(original)
                save_npz(out_dir / "golden_dequantized.npz", golden_arrays(xs, ys_deq))
                files.append("golden_dequantized.npz")
            io_desc = io_description(model, xs, ys)
            if len(xs) > 1 or len(ys) > 1:
                write_json(out_dir / "inputs.json", io_desc)
                files.append("inputs.json")
            entry = {
                "description": fx.description,
                "converter_flags": fx.flags,
                "quantized": fx.quantized,
                "rows": ROWS,
                "files": files,
                **io_desc,
            }
            if fx.name == "activations":
                entry["output_columns"] = [
                    {"columns": [i * ACTIVATION_UNITS, (i + 1) * ACTIVATION_UNITS], "what": c}
                    for i, c in enumerate(ACTIVATION_COLUMNS)
                ]
            index_entries[fx.name] = entry

    index_path = args.out / "index.json"
    index = json.loads(index_path.read_text()) if index_path.exists() else {}
    fixtures_index = index.get("fixtures", {})
    fixtures_index.update(index_entries)
    index = {
        "tools": {
            "python": ".".join(map(str, sys.version_info[:3])),
            "tensorflowjs": importlib.metadata.version("tensorflowjs"),
            "tensorflow": tf.__version__,
            "tf_keras": keras.__version__,
            "numpy": np.__version__,
        },
        "fixtures": {k: fixtures_index[k] for k in [f.name for f in FIXTURES] if k in fixtures_index},
    }
    write_json(index_path, index)
    print(f"wrote {len(index_entries)} fixtures under {args.out}")


if __name__ == "__main__":
    main()
