"""``jsengine-ml bench``: jsengine-ml's engines against the usual alternatives, same weights, same rows.

Contenders: every available backend (artifact path; bundle path when ``jsengine_ml.bundle`` exists),
a hand-written numpy forward pass, onnxruntime (1 thread, graph built from the same weights), tfjs in
Node, a loopback HTTP model service, and the "origin" data path on V8 (every number as JSON).
Workloads: the Wine MLP and the digits CNN reference models. Writes ``RESULTS.md`` (tables, ratios,
targets, machine), ``results.json`` and PNG plots into ``out_dir``.

Timings are medians of repeats taken in one run on one machine; compare ratios, not absolutes.
"""

from __future__ import annotations

import argparse
import http.client
import json
import math
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from .errors import ModelError

REF_DIR = Path(__file__).resolve().parent / "reference_models"
WORKLOADS = {"wine": "Wine MLP (13→64 relu→3 softmax)", "digits_cnn": "digits CNN (8×8×1 conv/pool/conv/dense)"}
SECTIONS = [
    "Machine",
    "Contenders",
    "Sanity check",
    "Throughput",
    "Latency at batch 1",
    "Load time and memory",
    "Data path vs JSON",
    "Overhead split",
    "Micro-batching",
    "Hot swap",
    "Targets",
    "Notes",
]
perf = time.perf_counter


# ====================================================================== settings
class Settings:
    def __init__(self, quick: bool):
        self.quick = quick
        self.sizes = [1, 64, 256] if quick else [1, 64, 1000, 10000]
        self.repeats = 3 if quick else 7
        self.cell_budget_s = 0.4 if quick else 4.0  # stop repeating a cell after this long
        self.max_cell_s = 2.0 if quick else 60.0  # skip a cell whose estimated single run exceeds this
        self.lat_samples = 60 if quick else 1000
        self.lat_budget_s = 0.4 if quick else 3.0
        self.http_requests = 150 if quick else 2000
        self.http_clients = 8
        self.http_batch_sizes = [64] if quick else [64, 1000, 10000]
        self.mb_records = 3000 if quick else 60000
        self.mb_threads = 8 if quick else 32
        self.mem_models = 2 if quick else 3
        self.mem_quickjs_models = 5 if quick else 100
        self.transfer_rows = 10000
        self.hotswap_swaps = 3 if quick else 10
        self.transfer_rows_large = 50_000 if quick else 250_000
        self.transfer_repeats = 3 if quick else 9
        self.overhead_min_batch = 256 if quick else 1000


# ====================================================================== helpers
def _median(xs: list[float]) -> float:
    return float(statistics.median(xs)) if xs else math.nan


def _pct(xs: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(xs), q)) if xs else math.nan


def _measure(fn: Callable[[], Any], repeats: int, budget_s: float, warm: bool = True) -> tuple[float, int]:
    """Median seconds of ``fn()`` over up to ``repeats`` runs (fewer once ``budget_s`` is spent)."""
    if warm:
        fn()
    ts: list[float] = []
    start = perf()
    for _ in range(max(1, repeats)):
        t = perf()
        fn()
        ts.append(perf() - t)
        if perf() - start > budget_s:
            break
    return _median(ts), len(ts)


def _latencies(fn: Callable[[], Any], samples: int, budget_s: float) -> list[float]:
    fn()
    out: list[float] = []
    start = perf()
    for _ in range(samples):
        t = perf()
        fn()
        out.append(perf() - t)
        if perf() - start > budget_s and len(out) >= 20:
            break
    return out


def _run_threads(target: Callable[[int], Any], n: int) -> float:
    """Run ``target(i)`` on ``n`` threads at once; return the wall time until all have finished."""
    threads = [threading.Thread(target=target, args=(i,)) for i in range(n)]
    t = perf()
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    return perf() - t


def rss_bytes() -> int:
    try:
        import psutil  # type: ignore[import-not-found]

        return int(psutil.Process().memory_info().rss)
    except ImportError:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _fmt(x: float, digits: int = 3) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "–"
    if abs(x) >= 1e6:
        return f"{x / 1e6:.{digits}g} M"
    if abs(x) >= 1e4:
        return f"{x / 1e3:.{digits}g} k"
    return f"{x:.{digits}g}"


def _ms(x: float) -> str:
    return "–" if not math.isfinite(x) else (f"{x * 1e3:.3g}")


def _benchmarks_dir() -> Path | None:
    """The source checkout's ``benchmarks/`` folder (helpers), if present."""
    here = Path(__file__).resolve().parent.parent / "benchmarks"
    return here if (here / "http_service.py").is_file() else None


# ====================================================================== weights and the numpy model
def read_weights(model_dir: Path) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """(model.json, {weight name: float32 array}) from a Layers artifact; shards in manifest order."""
    from .model import read_layers_artifact, split_weights

    spec, shards = read_layers_artifact(Path(model_dir) / "model.json")
    return spec, split_weights(spec, shards)


def _layers(spec: dict[str, Any]) -> tuple[list[int | None], list[dict[str, Any]]]:
    layers = spec["modelTopology"]["config"]["layers"]
    first = layers[0]["config"]
    shape = first.get("batch_input_shape") or first.get("batch_shape")
    if shape is None and "batch_input_shape" in layers[1]["config"]:
        shape = layers[1]["config"]["batch_input_shape"]
    body = [layer for layer in layers if layer["class_name"] != "InputLayer"]
    return list(shape), body


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def _activate(x: np.ndarray, name: str | None) -> np.ndarray:
    if name in (None, "linear"):
        return x
    if name == "relu":
        return np.maximum(x, 0, out=x)
    if name == "softmax":
        return _softmax(x)
    raise NotImplementedError(f"activation {name}")


def _same_pads(k: int) -> tuple[int, int]:
    return (k - 1) // 2, (k - 1) - (k - 1) // 2


def conv2d_nhwc(x: np.ndarray, kernel: np.ndarray, bias: np.ndarray, padding: str) -> np.ndarray:
    """Stride-1 Conv2D on NHWC via sliding windows + one matmul (im2col)."""
    kh, kw, cin, cout = kernel.shape
    if padding == "same":
        x = np.pad(x, ((0, 0), _same_pads(kh), _same_pads(kw), (0, 0)))
    win = np.lib.stride_tricks.sliding_window_view(x, (kh, kw), axis=(1, 2))  # N,Ho,Wo,C,kh,kw
    n, ho, wo = win.shape[:3]
    cols = win.transpose(0, 1, 2, 4, 5, 3).reshape(n * ho * wo, kh * kw * cin)
    y = cols @ kernel.reshape(kh * kw * cin, cout) + bias
    return y.reshape(n, ho, wo, cout)


class NumpyModel:
    """Hand-written forward pass for the Sequential layers the reference models use."""

    def __init__(self, spec: dict[str, Any], weights: dict[str, np.ndarray]):
        self.input_shape, self.layers = _layers(spec)
        self.weights = {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in weights.items()}
        self.n_features = math.prod(d for d in self.input_shape[1:])

    @classmethod
    def from_dir(cls, model_dir: str | os.PathLike[str]) -> NumpyModel:
        return cls(*read_weights(Path(model_dir)))

    def predict(self, x: Any) -> np.ndarray:
        x = np.asarray(x, dtype=np.float32)
        x = x.reshape([x.shape[0], *self.input_shape[1:]])
        w = self.weights
        for layer in self.layers:
            cls, cfg = layer["class_name"], layer["config"]
            name = cfg["name"]
            if cls == "Dense":
                x = x @ w[f"{name}/kernel"]
                if cfg.get("use_bias", True):
                    x = x + w[f"{name}/bias"]
                x = _activate(x, cfg.get("activation"))
            elif cls == "Conv2D":
                if tuple(cfg.get("strides", (1, 1))) != (1, 1):
                    raise NotImplementedError("Conv2D strides other than 1")
                x = conv2d_nhwc(x, w[f"{name}/kernel"], w.get(f"{name}/bias", 0), cfg.get("padding", "valid"))
                x = _activate(x, cfg.get("activation"))
            elif cls == "MaxPooling2D":
                ph, pw = cfg["pool_size"]
                n, h, wd, c = x.shape
                h2, w2 = h // ph, wd // pw
                x = x[:, : h2 * ph, : w2 * pw].reshape(n, h2, ph, w2, pw, c).max(axis=(2, 4))
            elif cls == "Flatten":
                x = x.reshape(x.shape[0], -1)
            else:
                raise NotImplementedError(f"layer {cls}")
        return np.asarray(x, dtype=np.float32).reshape(x.shape[0], -1)

    def close(self) -> None:
        pass


# ====================================================================== onnxruntime
def _onnx_graph(spec: dict[str, Any], weights: dict[str, np.ndarray]) -> tuple[list[Any], dict[str, np.ndarray], int]:
    """(nodes as (op, inputs, outputs, attrs), initializers, n_features) of the same Sequential model.

    Keras convs are NHWC, ONNX convs NCHW: the input is transposed before the first conv/pool, kernels
    go HWIO -> OIHW, and the activations go back to NHWC before Flatten so the Dense weights match.
    """
    input_shape, layers = _layers(spec)
    n_features = math.prod(input_shape[1:])
    nodes: list[Any] = []
    inits: dict[str, np.ndarray] = {}
    counter = iter(range(10**6))

    def t(prefix: str) -> str:
        return f"{prefix}_{next(counter)}"

    def const(name: str, arr: np.ndarray) -> str:
        inits[name] = np.ascontiguousarray(arr)
        return name

    def node(op: str, ins: list[str], prefix: str, **attrs: Any) -> str:
        out = t(prefix)
        nodes.append((op, ins, [out], attrs))
        return out

    cur, layout = "x", "flat"
    if len(input_shape) > 2:
        cur = node("Reshape", [cur, const("in_shape", np.array([-1, *input_shape[1:]], np.int64))], "reshape")
        layout = "NHWC"

    def act(x: str, name: str | None) -> str:
        if name in (None, "linear"):
            return x
        if name == "relu":
            return node("Relu", [x], "relu")
        if name == "softmax":
            return node("Softmax", [x], "softmax", axis=-1)
        raise NotImplementedError(name)

    for layer in layers:
        cls, cfg = layer["class_name"], layer["config"]
        name = cfg["name"]
        if cls in ("Conv2D", "MaxPooling2D") and layout == "NHWC":
            cur, layout = node("Transpose", [cur], "to_nchw", perm=[0, 3, 1, 2]), "NCHW"
        if cls == "Dense":
            cur = node("MatMul", [cur, const(f"{name}_W", weights[f"{name}/kernel"])], "matmul")
            if cfg.get("use_bias", True):
                cur = node("Add", [cur, const(f"{name}_b", weights[f"{name}/bias"])], "add")
            cur = act(cur, cfg.get("activation"))
        elif cls == "Conv2D":
            k = weights[f"{name}/kernel"]  # kh, kw, cin, cout -> cout, cin, kh, kw
            kh, kw = k.shape[:2]
            pads = [0, 0, 0, 0]
            if cfg.get("padding") == "same":
                (t0, b0), (l0, r0) = _same_pads(kh), _same_pads(kw)
                pads = [t0, l0, b0, r0]
            ins = [cur, const(f"{name}_W", k.transpose(3, 2, 0, 1))]
            if cfg.get("use_bias", True):
                ins.append(const(f"{name}_b", weights[f"{name}/bias"]))
            cur = node("Conv", ins, "conv", kernel_shape=[kh, kw], pads=pads, strides=[1, 1])
            cur = act(cur, cfg.get("activation"))
        elif cls == "MaxPooling2D":
            cur = node(
                "MaxPool",
                [cur],
                "pool",
                kernel_shape=list(cfg["pool_size"]),
                strides=list(cfg.get("strides") or cfg["pool_size"]),
            )
        elif cls == "Flatten":
            if layout == "NCHW":
                cur = node("Transpose", [cur], "to_nhwc", perm=[0, 2, 3, 1])
            cur, layout = node("Flatten", [cur], "flatten", axis=1), "flat"
        else:
            raise NotImplementedError(cls)
    nodes.append(("Identity", [cur], ["y"], {}))
    return nodes, inits, n_features


ONNX_NOTE: list[str] = []


def build_onnx(spec: dict[str, Any], weights: dict[str, np.ndarray]) -> bytes:
    """Serialized ONNX model (opset 17) built with ``onnx.helper``; a minimal built-in protobuf writer
    stands in when the ``onnx`` package cannot be imported (e.g. a protobuf version conflict)."""
    nodes, inits, n_features = _onnx_graph(spec, weights)
    try:
        import onnx
        from onnx import TensorProto, helper, numpy_helper
    except Exception as exc:
        if not ONNX_NOTE:
            ONNX_NOTE.append(
                f"`import onnx` failed ({type(exc).__name__}: {str(exc)[:160]}); the same graph was "
                "serialized by bench.py's minimal ONNX protobuf writer instead of onnx.helper"
            )
        return _encode_onnx(nodes, inits, n_features)
    graph = helper.make_graph(
        [helper.make_node(op, ins, outs, **attrs) for op, ins, outs, attrs in nodes],
        "jsengine_ml_bench",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", n_features])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", None])],
        [numpy_helper.from_array(a, name=n) for n, a in inits.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="jsengine-ml-bench")
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model.SerializeToString()


# --- minimal protobuf encoding of the ONNX subset used above (field numbers from onnx.proto3)
def _varint(v: int) -> bytes:
    v &= (1 << 64) - 1
    out = bytearray()
    while True:
        b = v & 0x7F
        v >>= 7
        if v:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _fv(field: int, v: int) -> bytes:
    return _varint(field << 3) + _varint(v)


def _fb(field: int, data: bytes | str) -> bytes:
    if isinstance(data, str):
        data = data.encode()
    return _varint((field << 3) | 2) + _varint(len(data)) + data


def _encode_onnx(nodes: list[Any], inits: dict[str, np.ndarray], n_features: int) -> bytes:
    def attr(name: str, v: Any) -> bytes:
        if isinstance(v, (list, tuple)):  # INTS = 7
            return _fb(1, name) + b"".join(_fv(8, int(i)) for i in v) + _fv(20, 7)
        return _fb(1, name) + _fv(3, int(v)) + _fv(20, 2)  # INT = 2

    def tensor(name: str, a: np.ndarray) -> bytes:
        dtype = {np.dtype("float32"): 1, np.dtype("int64"): 7}[a.dtype]
        le = a.astype(a.dtype.newbyteorder("<"), copy=False)
        return b"".join(_fv(1, d) for d in a.shape) + _fv(2, dtype) + _fb(8, name) + _fb(9, le.tobytes())

    def value_info(name: str, dims: list[Any] | None) -> bytes:
        tt = _fv(1, 1)
        if dims is not None:
            shape = b"".join(_fb(1, _fv(1, d) if isinstance(d, int) else _fb(2, d)) for d in dims)
            tt += _fb(2, shape)
        return _fb(1, name) + _fb(2, _fb(1, tt))

    g = b""
    for op, ins, outs, attrs in nodes:
        n = b"".join(_fb(1, i) for i in ins) + b"".join(_fb(2, o) for o in outs) + _fb(4, op)
        n += b"".join(_fb(5, attr(k, v)) for k, v in attrs.items())
        g += _fb(1, n)
    g += _fb(2, "jsengine_ml_bench")
    g += b"".join(_fb(5, tensor(k, v)) for k, v in inits.items())
    g += _fb(11, value_info("x", ["N", n_features])) + _fb(12, value_info("y", None))
    return _fv(1, 8) + _fb(2, "jsengine-ml-bench") + _fb(7, g) + _fb(8, _fb(1, "") + _fv(2, 17))


class OrtModel:
    def __init__(self, model_bytes: bytes):
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        self.session = ort.InferenceSession(model_bytes, opts, providers=["CPUExecutionProvider"])

    def predict(self, x: Any) -> np.ndarray:
        return self.session.run(["y"], {"x": np.ascontiguousarray(x, dtype=np.float32)})[0]

    def close(self) -> None:
        self.session = None


# ====================================================================== the origin data path on V8
class OriginV8:
    """The pre-jsengine-ml way on V8: nested lists in as JSON, tfjs predict, arraySync out as JSON."""

    def __init__(self, v8_model: Any):
        self.engine = v8_model.engine
        url = f"jsengine-ml-model-{v8_model._model_id}/model.json"
        t = perf()
        self.engine.settle(
            f"tf.loadLayersModel(tf.io.http({json.dumps(url)})).then(function (m) "
            "{ globalThis.__bench_origin_model = m; return 1; })"
        )
        self.engine.eval(
            "globalThis.__bench_origin = function (rows, shape) { return tf.tidy(function () {"
            " var x = tf.reshape(tf.tensor(rows), [rows.length].concat(shape));"
            " return __bench_origin_model.predict(x).arraySync(); }); };"
        )
        self.inner_shape = list(v8_model.metadata.input_shape[1:])
        self.predict(np.zeros((1, v8_model.metadata.n_features), np.float32))
        self.load_s = perf() - t

    def predict(self, x: np.ndarray) -> np.ndarray:
        out = self.engine.call("__bench_origin", x.tolist(), self.inner_shape)
        return np.asarray(out, dtype=np.float32).reshape(len(x), -1)

    def close(self) -> None:
        pass


# ====================================================================== contenders
class Contender:
    def __init__(self, name: str, kind: str, model: Any, load_s: float, note: str = ""):
        self.name, self.kind, self.model, self.load_s, self.note = name, kind, model, load_s, note

    def predict(self, x: np.ndarray) -> np.ndarray:
        return self.model.predict(x)


def _bundle_writer() -> tuple[Callable[..., Any] | None, str]:
    try:
        from . import bundle  # type: ignore[attr-defined]
    except Exception as exc:
        return None, f"jsengine_ml.bundle is not importable ({type(exc).__name__}: {exc})"
    fn = getattr(bundle, "write_bundle", None)
    if fn is None:
        return None, "jsengine_ml.bundle has no write_bundle()"
    return fn, ""


def _backends(requested: list[str] | None) -> tuple[list[str], list[str]]:
    from .backends import available_backends

    names, notes = [], []
    for info in available_backends():
        if requested and info.name not in requested:
            continue
        if info.available:
            names.append(info.name)
        else:
            notes.append(f"backend {info.name} unavailable: {info.reason}")
    for r in requested or []:
        if r not in names and not any(r in n for n in notes):
            notes.append(f"backend {r} is unknown")
    return names, notes


# ====================================================================== node / tfjs
def run_node(model_dir: Path, x: np.ndarray, input_shape: list[int], st: Settings, tmp: Path) -> dict[str, Any]:
    node = shutil.which("node")
    bdir = _benchmarks_dir()
    if node is None:
        return {"skipped": "node is not on PATH"}
    if bdir is None:
        return {"skipped": "benchmarks/node_tfjs_bench.js not found (not a source checkout)"}
    from .runtime import tfjs_dist

    tfjs_pkg = tfjs_dist(2017).parent.parent
    x_path = tmp / f"x_{model_dir.name}.bin"
    x.astype("<f4").tofile(x_path)
    cfg = {
        "tfjs": str(tfjs_pkg),
        "model_dir": str(model_dir),
        "x_path": str(x_path),
        "n_features": int(x.shape[1]),
        "input_shape": input_shape,
        "sizes": st.sizes,
        "repeats": st.repeats,
        "cell_budget_s": st.cell_budget_s,
        "latency_samples": st.lat_samples,
        "latency_budget_s": st.lat_budget_s,
        "check_rows": 64,
        "out_check": str(tmp / f"node_check_{model_dir.name}.bin"),
        "out_json": str(tmp / f"node_{model_dir.name}.json"),
    }
    cfg_path = tmp / f"node_cfg_{model_dir.name}.json"
    cfg_path.write_text(json.dumps(cfg))
    proc = subprocess.run(
        [node, str(bdir / "node_tfjs_bench.js"), str(cfg_path)], capture_output=True, text=True, timeout=900
    )
    if proc.returncode != 0:
        return {"skipped": f"node failed: {proc.stderr.strip()[-400:]}"}
    res = json.loads(Path(cfg["out_json"]).read_text())
    res["check"] = np.fromfile(cfg["out_check"], dtype="<f4").reshape(64, -1)
    res["times"] = {int(k): v for k, v in res["times"].items()}
    return res


# ====================================================================== HTTP service
class HttpService:
    def __init__(self, model_dir: Path, max_requests: int):
        bdir = _benchmarks_dir()
        if bdir is None:
            raise FileNotFoundError("benchmarks/http_service.py not found (not a source checkout)")
        env = dict(
            os.environ,
            PYTHONPATH=os.pathsep.join([str(Path(__file__).resolve().parent.parent), os.environ.get("PYTHONPATH", "")]),
        )
        self.proc = subprocess.Popen(
            [
                sys.executable,
                str(bdir / "http_service.py"),
                "--model",
                str(model_dir),
                "--max-requests",
                str(max_requests),
                "--idle-timeout",
                "60",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        line = self.proc.stdout.readline() if self.proc.stdout else ""
        if not line:
            err = self.proc.stderr.read() if self.proc.stderr else ""
            raise RuntimeError(f"the HTTP service did not start: {err[-400:]}")
        self.port = int(json.loads(line)["port"])

    def connect(self) -> http.client.HTTPConnection:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        conn.connect()
        conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return conn

    @staticmethod
    def predict(conn: http.client.HTTPConnection, x: np.ndarray) -> np.ndarray:
        body = json.dumps({"instances": x.tolist()}).encode()
        conn.request("POST", "/predict", body=body, headers={"Content-Type": "application/json"})
        resp = conn.getresponse()
        data = resp.read()
        if resp.status != 200:
            raise RuntimeError(f"HTTP {resp.status}: {data[:200]!r}")
        return np.asarray(json.loads(data)["predictions"], dtype=np.float32)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def bench_http(model_dir: Path, x: np.ndarray, st: Settings) -> dict[str, Any]:
    budget = st.http_requests * 3 + 200
    svc = HttpService(model_dir, budget)
    res: dict[str, Any] = {"times": {}}
    try:
        conn = svc.connect()
        res["check"] = svc.predict(conn, x[:64])
        lat = _latencies(lambda: svc.predict(conn, x[:1]), st.http_requests, st.lat_budget_s * 2)
        res["latency"] = lat
        res["seq_rps"] = len(lat) / sum(lat)
        res["times"][1] = _median(lat)
        for n in st.http_batch_sizes:
            res["times"][n], _ = _measure(
                lambda n=n: svc.predict(conn, x[:n]), 3 if n >= 10000 else st.repeats, st.cell_budget_s
            )
        conn.close()
        # concurrent clients, one record per request, one keep-alive connection each
        per = max(10, st.http_requests // st.http_clients)
        errors: list[BaseException] = []

        def client(i: int) -> None:
            try:
                c = svc.connect()
                for j in range(per):
                    svc.predict(c, x[(i * per + j) % len(x) : (i * per + j) % len(x) + 1])
                c.close()
            except BaseException as exc:  # pragma: no cover - reported
                errors.append(exc)

        elapsed = _run_threads(client, st.http_clients)
        res["conc_rps"] = (per * st.http_clients) / elapsed if not errors else math.nan
        res["conc_clients"] = st.http_clients
        if errors:
            res["conc_error"] = repr(errors[0])
    finally:
        svc.close()
    conc = res.get("conc_rps", 0.0)
    res["best_rps"] = max(res.get("seq_rps", 0.0), conc if math.isfinite(conc) else 0.0)
    return res


# ====================================================================== transfer (data path vs JSON)
def bench_transfer(backend: str, st: Settings, rng: np.random.Generator) -> dict[str, Any]:
    from .backends import create_engine

    x = rng.standard_normal((st.transfer_rows, 13)).astype(np.float32)
    nbytes = x.nbytes
    eng = create_engine(backend)
    try:
        eng.eval(
            "globalThis.__bench_noop = function () { return 0; };"
            "globalThis.__bench_echo = function (a) { return a; };"
            "globalThis.__bench_id = function (d, s) { return {data: d, shape: s}; };"
        )
        reps, bud = st.transfer_repeats, st.cell_budget_s
        noop = _latencies(lambda: eng.call("__bench_noop"), 400 if not st.quick else 50, 0.5)
        t_put, _ = _measure(lambda: eng.put_array("__bx", x), reps, bud)
        t_get, _ = _measure(lambda: eng.get_array("__bx"), reps, bud)
        ok_get = bool(np.array_equal(eng.get_array("__bx").reshape(x.shape), x))
        t_rt, _ = _measure(lambda: eng.transform("__bench_id", x), reps, bud)
        ok_rt = bool(np.array_equal(eng.transform("__bench_id", x), x))

        def json_rt() -> np.ndarray:
            return np.asarray(eng.call("__bench_echo", x.tolist()), dtype=np.float32)

        t_json, _ = _measure(json_rt, max(3, reps // 2), bud * 2)
        ok_json = bool(np.array_equal(json_rt(), x))
        # Bandwidth where the per-call cost no longer dominates: a 250,000 x 13 matrix (13 MB).
        big = rng.standard_normal((st.transfer_rows_large, 13)).astype(np.float32)
        t_put_big, _ = _measure(lambda: eng.put_array("__bbig", big), max(3, reps // 3), bud)
        t_get_big, _ = _measure(lambda: eng.get_array("__bbig"), max(3, reps // 3), bud)
        ok_big = bool(np.array_equal(eng.get_array("__bbig").reshape(big.shape), big))
    finally:
        eng.close()
    return {
        "bytes": nbytes,
        "call_overhead_s": _median(noop),
        "put_s": t_put,
        "get_s": t_get,
        "roundtrip_s": t_rt,
        "json_s": t_json,
        "put_MBps": nbytes / t_put / 1e6,
        "get_MBps": nbytes / t_get / 1e6,
        "roundtrip_MBps": 2 * nbytes / t_rt / 1e6,
        "json_MBps": 2 * nbytes / t_json / 1e6,
        "speedup_vs_json": t_json / t_rt,
        "large_bytes": big.nbytes,
        "put_large_MBps": big.nbytes / t_put_big / 1e6,
        "get_large_MBps": big.nbytes / t_get_big / 1e6,
        "exact": ok_get and ok_rt and ok_json and ok_big,
    }


# ====================================================================== memory (subprocess)
def _mem_probe(cfg: dict[str, Any]) -> dict[str, Any]:
    import gc

    kind, model_dir, n = cfg["kind"], cfg["model"], int(cfg["n"])
    # import everything first so the deltas are per model, not per library
    if kind == "onnxruntime":
        import onnxruntime  # noqa: F401

        spec, w = read_weights(Path(model_dir))
        blob = build_onnx(spec, w)
    elif kind != "numpy":
        from .backends import get_backend
        from .model import load

        get_backend(kind)
    gc.collect()
    base = rss_bytes()
    models, loads = [], []
    for i in range(n):
        t = perf()
        if kind == "numpy":
            m = NumpyModel.from_dir(model_dir)
        elif kind == "onnxruntime":
            m = OrtModel(blob)
        else:
            m = load(model_dir, kind)
        m.predict(np.zeros((1, 13 if "wine" in model_dir else 64), np.float32))
        loads.append(perf() - t)
        models.append(m)
        if i == 0:
            first = rss_bytes() - base
    gc.collect()
    total = rss_bytes() - base
    peak = rss_bytes()
    for m in models:
        m.close()
    return {
        "kind": kind,
        "n": n,
        "rss_base": base,
        "rss_total_delta": total,
        "rss_after": peak,
        "per_model": total / n,
        "first_model": first,
        "load_s_median": _median(loads),
    }


def run_mem_probe(kind: str, model_dir: Path, n: int, timeout: float = 600) -> dict[str, Any]:
    cmd = [
        sys.executable,
        "-m",
        "jsengine_ml.bench",
        "--_mem-probe",
        json.dumps({"kind": kind, "model": str(model_dir), "n": n}),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        return {"kind": kind, "n": n, "error": proc.stderr.strip()[-400:]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


# ====================================================================== micro-batching
MB_CONFIGS = [(256, 0.002), (4096, 0.005)]


def bench_microbatch(
    backend: str, model_dir: Path, x: np.ndarray, st: Settings, runtime: str = "tfjs"
) -> dict[str, Any]:
    """Per-record throughput through MicroBatcher: a producer stream (both configs) and closed-loop threads."""
    from .microbatch import MicroBatcher

    res: dict[str, Any] = {"backend": backend, "runtime": runtime, "configs": {}}
    n = st.mb_records
    rows = [x[i % len(x)] for i in range(n)]
    for max_batch, delay in MB_CONFIGS:
        cfg: dict[str, Any] = {"max_batch": max_batch, "max_delay_s": delay}
        with MicroBatcher(
            path=str(model_dir), backend=backend, load_options={"runtime": runtime},
            max_batch=max_batch, max_delay_s=delay,
        ) as mb:
            for f in mb.submit_many(rows[: 2 * max_batch]):  # warm the engine at the batch sizes it will see
                f.result()
            b0, r0 = mb.batches, mb.records
            t = perf()
            futs = mb.submit_many(rows)
            outs = [f.result() for f in futs]
            cfg["stream_rps"] = n / (perf() - t)
            cfg["stream_mean_batch"] = (mb.records - r0) / max(1, mb.batches - b0)
            res.setdefault("stream_check", np.stack(outs[:64]))
            if max_batch == MB_CONFIGS[0][0]:
                cfg.update(_mb_closed_loop(mb, x, st, res["stream_check"]))
        res["configs"][f"{max_batch}/{delay * 1e3:g}ms"] = cfg
    res["stream_rps"] = max(c["stream_rps"] for c in res["configs"].values())
    first = res["configs"][f"{MB_CONFIGS[0][0]}/{MB_CONFIGS[0][1] * 1e3:g}ms"]
    res["conc_rps"] = first["conc_rps"]
    res["wrong"] = first["wrong"]
    res["best_rps"] = max(res["stream_rps"], res["conc_rps"])
    return res


def bench_hotswap(backend: str, swaps: int, tmp: Path, *, bundles: bool = False) -> dict[str, Any]:
    """Swap Wine versions ``swaps`` times under a scoring loop; the scoring thread's pause per swap.

    ``bundles`` swaps single-file bundles (tfjs evaluated at each load: a slower load) instead.
    """
    from .bundle import write_bundle
    from .hotswap import HotSwapModel
    from .testing import numpy_wine_predict, write_wine_variant

    folders = [tmp / f"hs-{backend}-v{i}" for i in range(swaps + 1)]
    for i, folder in enumerate(folders):
        write_wine_variant(folder, seed=i + 1)
    versions = [write_bundle(f, f / "model.bundle.js") for f in folders] if bundles else folders
    x = np.random.default_rng(7).standard_normal((64, 13)).astype(np.float32)
    loads: list[float] = []
    wrong = 0
    with HotSwapModel(backend=backend) as hs:
        for i, (folder, artifact) in enumerate(zip(folders, versions, strict=True)):
            t0 = perf()
            fut = hs.offer(f"v{i}", artifact)
            fut.add_done_callback(lambda _f, t0=t0: loads.append(perf() - t0))
            fut.result(timeout=600)
            while True:  # score until the new version serves
                out, version = hs.predict_with_version(x)
                if version == f"v{i}":
                    break
            wrong += int(not np.allclose(out, numpy_wine_predict(folder, x), atol=1e-5))
        pauses = list(hs.swap_pauses)
    return {
        "artifact": "bundle" if bundles else "model.json",
        "swaps": len(pauses),
        "pause_p50_s": _median(pauses),
        "pause_max_s": max(pauses),
        "load_p50_s": _median(loads),
        "load_min_s": min(loads),
        "wrong": wrong,
    }


def _mb_closed_loop(mb: Any, x: np.ndarray, st: Settings, expect: np.ndarray) -> dict[str, Any]:
    """N threads, each submitting one record and waiting for it before the next."""
    per = max(20, st.mb_records // (st.mb_threads * 8))
    lat: list[float] = []
    lock = threading.Lock()
    wrong = [0]

    def submitter(i: int) -> None:
        mine = []
        for j in range(per):
            k = (i * per + j) % len(x)
            t0 = perf()
            out = mb.submit(x[k]).result()
            mine.append(perf() - t0)
            if k < 64 and not np.allclose(out, expect[k], atol=1e-5):
                wrong[0] += 1
        with lock:
            lat.extend(mine)

    b0, r0 = mb.batches, mb.records
    elapsed = _run_threads(submitter, st.mb_threads)
    return {
        "conc_rps": per * st.mb_threads / elapsed,
        "conc_threads": st.mb_threads,
        "conc_p50_s": _pct(lat, 50),
        "conc_p99_s": _pct(lat, 99),
        "conc_mean_batch": (mb.records - r0) / max(1, mb.batches - b0),
        "wrong": wrong[0],
    }


# ====================================================================== machine
def machine_info() -> dict[str, str]:
    info: dict[str, str] = {}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["CPU"] = line.split(":", 1)[1].strip()
                break
    except OSError:
        info["CPU"] = platform.processor() or platform.machine()
    info["cores (os.cpu_count)"] = str(os.cpu_count())
    try:
        info["cores usable (affinity)"] = str(len(os.sched_getaffinity(0)))
    except AttributeError:
        pass
    try:
        info["RAM"] = f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.1f} GiB"
    except (ValueError, OSError):
        pass
    info["OS"] = platform.platform()
    info["Python"] = f"{platform.python_implementation()} {platform.python_version()}"
    from importlib import metadata as md

    for pkg in ("numpy", "onnx", "onnxruntime", "mini-racer", "quickjs", "dukpy", "matplotlib"):
        try:
            info[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            info[pkg] = "not installed"
    from .backends import available_backends

    for b in available_backends():
        if b.available and b.capabilities:
            c = b.capabilities
            info[f"engine {b.name}"] = f"{c.engine} {c.engine_version} via {c.binding} ({c.language})"
    node = shutil.which("node")
    if node:
        try:
            proc = subprocess.run([node, "--version"], capture_output=True, text=True, timeout=20)
            info["node"] = proc.stdout.strip()
        except (OSError, subprocess.SubprocessError):
            info["node"] = "?"
    from .runtime import TFJS_VERSION

    info["tfjs"] = TFJS_VERSION
    return info


# ====================================================================== per workload
def _rows(workload: str, n: int, rng: np.random.Generator) -> np.ndarray:
    if workload == "digits_cnn":
        return rng.uniform(0, 1, size=(n, 64)).astype(np.float32)
    return rng.standard_normal((n, 13)).astype(np.float32)


class _Progress:
    def __init__(self, quick: bool):
        try:
            from tqdm import tqdm

            self.bar = tqdm(
                total=1, desc="bench", unit="step", file=sys.stderr, dynamic_ncols=True, mininterval=0.5, disable=None
            )
        except ImportError:  # pragma: no cover
            self.bar = None

    def add(self, n: int) -> None:
        if self.bar is not None:
            self.bar.total += n
            self.bar.refresh()

    def step(self, desc: str) -> None:
        if self.bar is not None:
            self.bar.set_description(desc[:40])
            self.bar.update(1)
        else:
            print(f"[bench] {desc}", file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def bench_workload(
    workload: str,
    backends: list[str],
    st: Settings,
    rng: np.random.Generator,
    tmp: Path,
    prog: _Progress,
    notes: list[str],
) -> dict[str, Any]:
    from .model import load

    model_dir = REF_DIR / workload
    spec, weights = read_weights(model_dir)
    input_shape, _ = _layers(spec)
    x = _rows(workload, max(st.sizes), rng)
    out: dict[str, Any] = {"contenders": {}, "agreement": {}}

    # golden check of the numpy pass (our yardstick) against the Keras outputs
    ref = NumpyModel(spec, weights)
    golden = np.load(model_dir / "golden.npz")
    gx = golden["x"].reshape(len(golden["x"]), -1).astype(np.float32)
    out["numpy_vs_golden"] = float(np.abs(ref.predict(gx) - golden["y"].reshape(len(gx), -1)).max())

    contenders: list[Contender] = []
    t = perf()
    npm = NumpyModel.from_dir(model_dir)
    contenders.append(Contender("numpy", "baseline", npm, perf() - t))
    try:
        t = perf()
        ortm = OrtModel(build_onnx(spec, weights))
        ortm.predict(x[:1])
        contenders.append(Contender("onnxruntime-1t", "baseline", ortm, perf() - t))
    except Exception as exc:
        notes.append(f"{workload}: onnxruntime skipped ({type(exc).__name__}: {exc})")
    writer, why = _bundle_writer()
    if writer is None and workload == "wine":
        notes.append(f"bundle path skipped: {why}")
    for be in backends:
        t = perf()
        m = load(model_dir, be)
        contenders.append(Contender(be, "engine", m, perf() - t))
        try:  # the plain-JS kernels runtime, for models it supports (Dense-only)
            t = perf()
            km = load(model_dir, be, runtime="kernels")
            contenders.append(Contender(f"{be}-kernels", "engine", km, perf() - t))
        except ModelError as exc:
            if be == backends[0]:
                notes.append(f"{workload}: kernels runtime not applicable ({exc})")
        if writer is not None:
            try:
                bpath = tmp / f"{workload}_{be}.js"
                writer(model_dir / "model.json", bpath)
                t = perf()
                bm = load(bpath, be)
                contenders.append(Contender(f"{be}-bundle", "engine", bm, perf() - t))
            except Exception as exc:
                notes.append(f"{workload}: bundle path on {be} failed ({type(exc).__name__}: {exc})")
        if be == "v8":
            try:
                origin = OriginV8(m)
                contenders.append(
                    Contender("v8-origin-json", "origin", origin, origin.load_s, "same engine, JSON data path")
                )
            except Exception as exc:
                notes.append(f"{workload}: origin JSON path failed ({type(exc).__name__}: {exc})")
        prog.step(f"{workload}: loaded {be}")

    steps = len(contenders) * (len(st.sizes) + 2)
    prog.add(steps + 2)
    base = npm.predict(x[:64])
    for c in contenders:
        r: dict[str, Any] = {"kind": c.kind, "load_s": c.load_s, "times": {}, "skipped": {}, "note": c.note}
        try:
            got = c.predict(x[:64])
            r["max_abs_diff"] = float(np.abs(got - base).max())
        except Exception as exc:
            r["max_abs_diff"] = math.nan
            notes.append(f"{workload}: {c.name} failed the sanity predict ({type(exc).__name__}: {exc})")
            out["contenders"][c.name] = r
            continue
        prev: tuple[int, float] | None = None
        for n in st.sizes:
            est = prev[1] * n / prev[0] if prev else 0.0
            if est > st.max_cell_s:
                r["skipped"][n] = f"estimated {est:.0f} s > {st.max_cell_s:g} s cell limit"
                prog.step(f"{workload}: {c.name} skip {n}")
                continue
            xb = x[:n]
            tm, _ = _measure(lambda xb=xb, c=c: c.predict(xb), st.repeats, st.cell_budget_s, warm=est < 2.0)
            r["times"][n] = tm
            prev = (n, tm)
            prog.step(f"{workload}: {c.name} n={n}")
        x1 = x[:1]
        r["latency"] = _latencies(lambda c=c, x1=x1: c.predict(x1), st.lat_samples, st.lat_budget_s)
        prog.step(f"{workload}: {c.name} latency")
        # overhead split (our engines): identity transform of the same in/out sizes + input validation
        if c.kind == "engine":
            r["overhead"] = {}
            eng = c.model.engine
            k = int(c.model.metadata.n_outputs or base.shape[1])
            eng.eval(
                "globalThis.__bench_ident = function (d, s, k) {"
                " return {data: new Float32Array(s[0] * k), shape: [s[0], k]}; };"
            )
            for n, tm in r["times"].items():
                if n < st.overhead_min_batch and n != 1:
                    continue
                xb = x[:n]
                t_tr, _ = _measure(
                    lambda xb=xb, eng=eng, k=k: eng.transform("__bench_ident", xb, k), st.repeats, st.cell_budget_s
                )
                t_val, _ = _measure(lambda xb=xb, c=c: c.model._validate(xb), st.repeats, st.cell_budget_s)
                ovh = t_tr + t_val
                compute = tm - ovh
                r["overhead"][n] = {
                    "predict_s": tm,
                    "transfer_call_s": t_tr,
                    "validate_s": t_val,
                    "overhead_s": ovh,
                    "compute_s": compute,
                    "ratio": ovh / compute if compute > 0 else math.inf,
                }
        prog.step(f"{workload}: {c.name} overhead")
        out["contenders"][c.name] = r
    for c in contenders:
        try:
            c.model.close()
        except Exception:
            pass

    nres = run_node(model_dir, x, list(input_shape[1:]), st, tmp)
    if "skipped" in nres:
        notes.append(f"{workload}: tfjs-node skipped: {nres['skipped']}")
    else:
        out["contenders"]["tfjs-node"] = {
            "kind": "baseline",
            "load_s": nres["load_s"],
            "times": nres["times"],
            "skipped": {},
            "latency": nres["latency"],
            "max_abs_diff": float(np.abs(nres["check"] - base).max()),
            "rss_delta": nres["rss_delta"],
            "note": f"tfjs {nres['tfjs']} {nres['backend']} backend, node {nres['node']}",
        }
    prog.step(f"{workload}: tfjs-node")
    try:
        h = bench_http(model_dir, x, st)
        out["contenders"]["http-service"] = {
            "kind": "baseline",
            "load_s": math.nan,
            "times": h["times"],
            "skipped": {},
            "latency": h["latency"],
            "max_abs_diff": float(np.abs(h["check"] - base).max()),
            "note": "numpy model behind loopback HTTP/1.1 JSON",
        }
        out["http"] = {k: v for k, v in h.items() if k not in ("check", "latency", "times")}
    except Exception as exc:
        notes.append(f"{workload}: HTTP service skipped ({type(exc).__name__}: {exc})")
    prog.step(f"{workload}: http")
    out["x_for_mb"] = x
    return out


# ====================================================================== targets
def evaluate_targets(res: dict[str, Any], st: Settings) -> list[dict[str, Any]]:
    targets: list[dict[str, Any]] = []

    def add(name: str, measured: str, met: bool | None, why: str = "") -> None:
        targets.append({"target": name, "measured": measured, "met": met, "why": why})

    for w, wr in res["workloads"].items():
        for name, c in wr["contenders"].items():
            if c.get("kind") != "engine":
                continue
            ratios = {n: o["ratio"] for n, o in c.get("overhead", {}).items() if n >= st.overhead_min_batch}
            if not ratios:
                add(
                    f"overhead ≤ 10% of compute, {name}, {w}",
                    "not measured (batches skipped)",
                    None,
                    "; ".join(f"{n}: {s}" for n, s in c.get("skipped", {}).items()),
                )
                continue
            worst = max(ratios.values())
            add(
                f"overhead ≤ 10% of compute at batch ≥ {st.overhead_min_batch}, {name}, {w}",
                ", ".join(f"{n}: {r * 100:.1f}%" for n, r in sorted(ratios.items())),
                worst <= 0.10,
            )
    for be, tr in res["transfer"].items():
        if "error" in tr:
            continue
        if be == "v8":
            lo = min(tr["put_large_MBps"], tr["get_large_MBps"])
            add(
                "V8 transfer ≥ 1 GB/s both ways",
                f"in {tr['put_large_MBps']:.0f} MB/s, out {tr['get_large_MBps']:.0f} MB/s for "
                f"{tr['large_bytes'] / 1e6:.0f} MB (10,000×13: in {tr['put_MBps']:.0f}, out {tr['get_MBps']:.0f} MB/s, "
                f"where the ~{tr['call_overhead_s'] * 1e6:.0f} µs per call dominates)",
                lo >= 1000,
            )
        else:
            add(f"{be} data path ≥ 3× faster than JSON", f"{tr['speedup_vs_json']:.1f}×", tr["speedup_vs_json"] >= 3)
    for w, wr in res["workloads"].items():
        http = wr["contenders"].get("http-service")
        if not http:
            continue
        hp50 = _pct(http["latency"], 50)
        best = min(
            (
                (_pct(c["latency"], 50), n)
                for n, c in wr["contenders"].items()
                if c.get("kind") == "engine" and c.get("latency")
            ),
            default=(math.nan, "-"),
        )
        add(
            f"batch-1 p50 below HTTP p50 on ≥ 1 engine, {w}",
            f"best {best[1]} {best[0] * 1e3:.3f} ms vs HTTP {hp50 * 1e3:.3f} ms ({hp50 / best[0]:.1f}× lower)",
            best[0] < hp50,
        )
    mb = res.get("microbatch") or {}
    wine_http = res["workloads"].get("wine", {}).get("http")
    for be, m in mb.items():
        if "error" in m or not wine_http:
            continue
        ratio = m["best_rps"] / wine_http["best_rps"]
        add(
            f"micro-batching ≥ 50× HTTP per-record throughput ({be}, wine)",
            f"{m['best_rps']:.0f} rec/s vs HTTP {wine_http['best_rps']:.0f} rec/s = {ratio:.1f}×",
            ratio >= 50,
        )
    for be, h in (res.get("hotswap") or {}).items():
        if "error" in h:
            continue
        heavy = h["load_min_s"] >= 0.1
        add(
            f"hot-swap pause ≤ 1 ms for a model whose load takes ≥ 100 ms ({be})",
            f"pause p50 {h['pause_p50_s'] * 1e6:.0f} µs, max {h['pause_max_s'] * 1e6:.0f} µs; "
            f"load p50 {h['load_p50_s'] * 1e3:.0f} ms (min {h['load_min_s'] * 1e3:.0f} ms)",
            h["pause_max_s"] <= 1e-3 if heavy else None,
            "" if heavy else "this backend loaded the model in under 100 ms: outside the target's premise",
        )
    nmax = max(st.sizes)
    for w, wr in res["workloads"].items():
        v8 = wr["contenders"].get("v8")
        node = wr["contenders"].get("tfjs-node")
        if v8 and node and nmax in v8["times"] and nmax in node["times"]:
            ratio = v8["times"][nmax] / node["times"][nmax]
            add(f"V8 within 1.5× of tfjs-node at batch {nmax}, {w}", f"{ratio:.2f}× node's time", ratio <= 1.5)
    mem = res.get("memory_quickjs_many")
    if mem and "error" not in mem:
        gb = mem["rss_after"] / 2**30
        add(
            f"{mem['n']} Wine models on QuickJS ≤ 1 GB RSS",
            f"{gb:.3f} GiB total RSS ({mem['per_model'] / 2**20:.1f} MiB per model)",
            gb <= 1.0 if mem["n"] >= 100 else None,
            ""
            if mem["n"] >= 100
            else f"quick run loads {mem['n']} models only (extrapolated "
            f"{(mem['rss_base'] + 100 * mem['per_model']) / 2**30:.2f} GiB for 100)",
        )
    return targets


# ====================================================================== report
_FAMILY_COLORS = {"v8": "tab:blue", "quickjs": "tab:green", "duktape": "tab:red", "numpy": "black",
                  "onnxruntime": "tab:purple", "tfjs": "tab:orange", "http": "tab:gray"}
_VARIANT_STYLES = {"kernels": ":", "bundle": "-.", "origin": (0, (5, 1, 1, 1, 1, 1))}
_MARKERS = "osD^vP*X"


def _style(name: str, kind: str | None) -> dict[str, Any]:
    """One colour per engine or peer, one line style per variant (kernels, bundle, origin JSON path)."""
    family, _, variant = name.partition("-")
    style: dict[str, Any] = {"color": _FAMILY_COLORS.get(family, "tab:brown"), "label": name}
    variant_key = variant.split("-")[0]
    style["linestyle"] = _VARIANT_STYLES.get(variant_key, "-" if kind == "engine" else "--")
    style["marker"] = _MARKERS[sum(map(ord, name)) % len(_MARKERS)]
    return style


def _plots(res: dict[str, Any], out_dir: Path) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    files = []
    for w, wr in res["workloads"].items():
        fig, ax = plt.subplots(figsize=(7.5, 5))
        for name, c in wr["contenders"].items():
            pts = sorted((n, n / t) for n, t in c["times"].items() if t and math.isfinite(t))
            if pts:
                ax.plot([p[0] for p in pts], [p[1] for p in pts], **_style(name, c.get("kind")))
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("batch size (rows)")
        ax.set_ylabel("rows / s (median)")
        ax.set_title(f"Throughput: {WORKLOADS[w]}")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
        fig.tight_layout()
        f = f"throughput_{w}.png"
        fig.savefig(out_dir / f, dpi=110)
        plt.close(fig)
        files.append(f)
    ws = list(res["workloads"])
    fig, axes = plt.subplots(1, len(ws), figsize=(6.5 * len(ws), 4.8), squeeze=False)
    for ax, w in zip(axes[0], ws, strict=True):
        for name, c in res["workloads"][w]["contenders"].items():
            lat = sorted(c.get("latency") or [])
            if lat:
                style = {**_style(name, c.get("kind")), "marker": None}
                ax.plot(np.asarray(lat) * 1e3, np.arange(1, len(lat) + 1) / len(lat), **style)
        ax.set_xscale("log")
        ax.set_xlabel("latency per 1-row call (ms)")
        ax.set_ylabel("fraction of calls ≤ x")
        ax.set_title(f"Batch-1 latency CDF: {w}")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out_dir / "latency_batch1.png", dpi=110)
    plt.close(fig)
    files.append("latency_batch1.png")
    return files


def write_report(res: dict[str, Any], st: Settings, out_dir: Path, plots: list[str]) -> Path:
    L: list[str] = []
    a = L.append
    a(f"# jsengine-ml benchmark{' (quick smoke run)' if st.quick else ''}\n")
    a(
        f"Generated by `jsengine-ml bench{' --quick' if st.quick else ''}` in {res['elapsed_s']:.0f} s. "
        "All numbers come from this one run on the machine below (2 shared, noisy cores): read the ratios, "
        "not the absolute values. Throughput is the median over repeats; latency is per 1-row call.\n"
    )
    a("## Machine\n")
    a("| item | value |\n|---|---|")
    for k, v in res["machine"].items():
        a(f"| {k} | {v} |")
    a("")
    a("## Contenders\n")
    a(
        "- **v8 / quickjs / duktape**: `jsengine_ml.load(model_dir, backend)`, one `engine.transform` per batch "
        "(binary data path).\n"
        "- **<backend>-kernels**: the same artifact with `runtime=\"kernels\"`: Dense-only models "
        "run as plain-JS typed-array loops, no tfjs (Wine only; the CNN has Conv2D).\n"
        "- **<backend>-bundle**: the same model as a single-file JS bundle "
        "(`jsengine_ml.bundle.write_bundle`), when available.\n- **v8-origin-json**: the same V8 engine and tfjs "
        "model, but rows go in as JSON nested lists (`engine.call`) and come back as JSON (`arraySync`).\n"
        "- **numpy**: hand-written forward pass from the shard weights.\n- **onnxruntime-1t**: ONNX graph "
        "built with `onnx.helper` from the same weights, `intra_op_num_threads=inter_op_num_threads=1`.\n"
        "- **tfjs-node**: tfjs 4.22 in Node (pure-JS `cpu` backend), model via `tf.io.fromMemory`, same rows.\n"
        "- **http-service**: the numpy model behind a loopback `ThreadingHTTPServer` (HTTP/1.1 keep-alive, "
        "TCP_NODELAY, JSON), client `http.client` with a persistent connection.\n"
    )
    a("## Sanity check\n")
    a(
        "Max |difference| of each contender's outputs from numpy's on the same 64 rows (pass ≤ 1e-4). The numpy "
        "pass itself is checked against the Keras golden outputs.\n"
    )
    a("| workload | numpy vs golden | " + " | ".join(["contender", "max abs diff", "ok"]) + " |")
    a("|---|---|---|---|---|")
    for w, wr in res["workloads"].items():
        for name, c in wr["contenders"].items():
            d = c.get("max_abs_diff", math.nan)
            a(f"| {w} | {wr['numpy_vs_golden']:.1e} | {name} | {d:.1e} | {'yes' if d <= 1e-4 else 'NO'} |")
    a("")
    a("## Throughput\n")
    for w, wr in res["workloads"].items():
        cs = wr["contenders"]
        a(f"### {WORKLOADS[w]}\n")
        a(
            "rows/s (median); in brackets the ratio to numpy / to onnxruntime at the same batch size "
            "(> 1 = faster than the baseline).\n"
        )
        a("| contender | " + " | ".join(f"batch {n:,}" for n in st.sizes) + " |")
        a("|---|" + "---|" * len(st.sizes))
        np_t, ort_t = cs["numpy"]["times"], cs.get("onnxruntime-1t", {}).get("times", {})
        for name, c in cs.items():
            cells = []
            for n in st.sizes:
                tm = c["times"].get(n)
                if tm is None:
                    cells.append("skipped" if n in c.get("skipped", {}) else "–")
                    continue
                r1 = np_t[n] / tm if n in np_t else math.nan
                r2 = ort_t[n] / tm if n in ort_t else math.nan
                cells.append(f"{_fmt(n / tm)} ({_fmt(r1, 2)} / {_fmt(r2, 2)})")
            a(f"| {name} | " + " | ".join(cells) + " |")
        skipped = [f"{name} batch {n}: {why}" for name, c in cs.items() for n, why in c.get("skipped", {}).items()]
        if skipped:
            a("\nSkipped cells: " + "; ".join(skipped) + ".")
        a(f"\n![throughput {w}](throughput_{w}.png)\n")
    a("## Latency at batch 1\n")
    a("Per-call latency of a 1-row predict (ms). HTTP: one request per record over a keep-alive connection.\n")
    a("| workload | contender | p50 ms | p99 ms | samples |\n|---|---|---|---|---|")
    for w, wr in res["workloads"].items():
        for name, c in wr["contenders"].items():
            lat = c.get("latency") or []
            a(f"| {w} | {name} | {_ms(_pct(lat, 50))} | {_ms(_pct(lat, 99))} | {len(lat)} |")
    a("\n![latency](latency_batch1.png)\n")
    a("## Load time and memory\n")
    a(
        "Load = construct + first predict, in this process. RSS per instance = RSS growth per loaded model, "
        f"measured in a fresh subprocess loading {st.mem_models} models of the kind (engines: one engine each).\n"
    )
    a("| workload | contender | load s | RSS per instance MiB |\n|---|---|---|---|")
    for w, wr in res["workloads"].items():
        for name, c in wr["contenders"].items():
            mem = res["memory"].get(f"{w}/{name}")
            if name == "tfjs-node":
                mib = f"{c.get('rss_delta', math.nan) / 2**20:.1f} (node process RSS delta)"
            elif mem and "per_model" in mem:
                mib = f"{mem['per_model'] / 2**20:.1f}"
            elif mem and "error" in mem:
                mib = "error"
            else:
                mib = "–"
            ld = c.get("load_s", math.nan)
            a(f"| {w} | {name} | {'–' if not math.isfinite(ld) else f'{ld:.3f}'} | {mib} |")
    mq = res.get("memory_quickjs_many")
    if mq:
        if "error" in mq:
            a(f"\n{mq['n']} Wine models on QuickJS: failed: {mq['error']}\n")
        else:
            a(
                f"\n**{mq['n']} Wine models on QuickJS** (one engine each, fresh subprocess): process RSS "
                f"{mq['rss_after'] / 2**20:.0f} MiB (baseline {mq['rss_base'] / 2**20:.0f} MiB after imports, "
                f"+{mq['per_model'] / 2**20:.1f} MiB per model, first model +{mq['first_model'] / 2**20:.1f} MiB); "
                f"median load {mq['load_s_median']:.2f} s.\n"
            )
    a("## Data path vs JSON\n")
    a(
        f"Round trip of a {st.transfer_rows:,} × 13 float32 matrix ({st.transfer_rows * 52 / 1e6:.2f} MB each way). "
        "Data path: `put_array` (in), `get_array` (out), `transform` identity (round trip). JSON: `json.dumps` of "
        "nested lists → `JSON.parse` in JS → `JSON.stringify` back → `json.loads`. MB/s counts bytes moved "
        "(round trip = both ways). Per-call overhead = an empty `engine.call`. \"large\" = put_array / get_array "
        "of a 250,000 × 13 matrix (50,000 in --quick), where the per-call cost no longer dominates.\n"
    )
    a(
        "| backend | call overhead µs | in MB/s | out MB/s | round trip ms | round trip MB/s | JSON ms | JSON MB/s "
        "| data path vs JSON | large in MB/s | large out MB/s | bit-exact |"
    )
    a("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for be, tr in res["transfer"].items():
        if "error" in tr:
            a(f"| {be} | error: {tr['error']} |||||||||||")
            continue
        a(
            f"| {be} | {tr['call_overhead_s'] * 1e6:.1f} | {tr['put_MBps']:.0f} | {tr['get_MBps']:.0f} | "
            f"{tr['roundtrip_s'] * 1e3:.2f} | {tr['roundtrip_MBps']:.0f} | {tr['json_s'] * 1e3:.1f} | "
            f"{tr['json_MBps']:.0f} | {tr['speedup_vs_json']:.1f}× | {tr['put_large_MBps']:.0f} | "
            f"{tr['get_large_MBps']:.0f} | {'yes' if tr['exact'] else 'NO'} |"
        )
    for w, wr in res["workloads"].items():
        v8, origin = wr["contenders"].get("v8"), wr["contenders"].get("v8-origin-json")
        if v8 and origin:
            gains = [
                f"batch {n:,}: {origin['times'][n] / v8['times'][n]:.1f}×"
                for n in st.sizes
                if n in v8["times"] and n in origin["times"]
            ]
            a(
                f"\n{w}: jsengine-ml's data path vs the origin's JSON path on the same V8 engine and model "
                f"(predict time ratio): {', '.join(gains)}."
            )
    a("")
    a("## Overhead split\n")
    a(
        "For our backends at batch ≥ "
        f"{st.overhead_min_batch:,}: transfer + call = `engine.transform` of an identity-like JS function with the "
        "same input and output sizes; validate = the Python input checks; compute = full predict − both. "
        "Target: overhead ≤ 10% of compute. Batch 1 is shown as a diagnostic of the per-call floor (no target).\n"
    )
    a("| workload | backend | batch | predict ms | transfer+call ms | validate ms | compute ms | overhead/compute |")
    a("|---|---|---|---|---|---|---|---|")
    for w, wr in res["workloads"].items():
        for name, c in wr["contenders"].items():
            for n, o in sorted(c.get("overhead", {}).items()):
                ok = math.isfinite(o["ratio"])
                share = f"{o['ratio'] * 100:.1f}%" if ok else "n/a (noise: overhead measured ≥ predict)"
                compute = f"{o['compute_s'] * 1e3:.2f}" if ok else "–"
                a(
                    f"| {w} | {name} | {n:,} | {o['predict_s'] * 1e3:.2f} | {o['transfer_call_s'] * 1e3:.3f} | "
                    f"{o['validate_s'] * 1e3:.3f} | {compute} | {share} |"
                )
    a("")
    a("## Hot swap\n")
    a(
        "`jsengine_ml.hotswap.HotSwapModel`: Wine versions (different weights) are offered one after another "
        "while this thread keeps scoring 64-row batches; each version is loaded (tfjs), warmed up and "
        "smoke-checked on the loader thread, then swapped in between two batches. *Pause* = time the scoring "
        "thread spends on the swap itself (taking the staged model, adopting its engine), excluding compute. "
        "Target: ≤ 1 ms for a model whose load takes ≥ 100 ms.\n"
    )
    a(
        "Where a backend loads the Wine artifact in under 100 ms, the same versions are also swapped as "
        "single-file bundles (`<backend>-bundle`; tfjs is evaluated at each load).\n"
    )
    a("| backend | swaps | pause p50 µs | pause max µs | load p50 ms | load min ms | outputs of wrong version |")
    a("|---|---|---|---|---|---|---|")
    for be, h in (res.get("hotswap") or {}).items():
        if "error" in h:
            a(f"| {be} | error: {h['error']} ||||||")
            continue
        a(
            f"| {be} | {h['swaps']} | {h['pause_p50_s'] * 1e6:.0f} | {h['pause_max_s'] * 1e6:.0f} | "
            f"{h['load_p50_s'] * 1e3:.0f} | {h['load_min_s'] * 1e3:.0f} | {h['wrong']} |"
        )
    a("")
    a("## Micro-batching\n")
    a(
        "`jsengine_ml.microbatch.MicroBatcher(path=wine, backend=..., max_batch=N, max_delay_s=T)` with "
        "(N, T) = (256, 2 ms) and (4096, 5 ms); the flusher thread loads and owns the engine. "
        "*Stream*: one producer submits records and collects the futures; "
        "*concurrent*: N threads each `submit(row).result()` in a loop. HTTP baseline: one record per request, "
        "best of one sequential client and "
        f"{st.http_clients} concurrent keep-alive clients (separate server process).\n"
    )
    a(
        "| backend | max_batch / max_delay | stream rec/s (mean batch) | closed-loop rec/s (threads) | closed-loop "
        "p50 / p99 ms (mean batch) | vs HTTP best | wrong results |"
    )
    a("|---|---|---|---|---|---|---|")
    wine_http = res["workloads"].get("wine", {}).get("http", {})
    hb = wine_http.get("best_rps", math.nan)
    for be, m in (res.get("microbatch") or {}).items():
        if "error" in m:
            a(f"| {be} | error: {m['error']} ||||||")
            continue
        for label, c in m["configs"].items():
            best = max(c["stream_rps"], c.get("conc_rps", 0.0))
            closed = (
                (
                    f"{c['conc_rps']:.0f} ({c['conc_threads']}) | {c['conc_p50_s'] * 1e3:.2f} / "
                    f"{c['conc_p99_s'] * 1e3:.2f} ({c['conc_mean_batch']:.0f})"
                )
                if "conc_rps" in c
                else "– | –"
            )
            a(
                f"| {be} | {label} | {c['stream_rps']:.0f} ({c['stream_mean_batch']:.0f}) | {closed} | "
                f"{best / hb:.1f}× | {c.get('wrong', '–')} |"
            )
    a(
        "\nClosed-loop submitters can never fill a batch beyond the number of threads, so they flush on the "
        "timer; the producer stream fills batches and shows the throughput ceiling."
    )
    if wine_http:
        a(
            f"HTTP service (wine): sequential client {wine_http.get('seq_rps', math.nan):.0f} rec/s, "
            f"{wine_http.get('conc_clients')} concurrent clients {wine_http.get('conc_rps', math.nan):.0f} rec/s."
        )
    a("")
    a("## Targets\n")
    a("| target | measured | met |\n|---|---|---|")
    for t in res["targets"]:
        met = "n/a" if t["met"] is None else ("**yes**" if t["met"] else "**NO**")
        why = f" — {t['why']}" if t["why"] else ""
        a(f"| {t['target']} | {t['measured']}{why} | {met} |")
    a("")
    a("## Notes\n")
    for n in res["notes"] or ["(none)"]:
        a(f"- {n}")
    a("")
    path = out_dir / "RESULTS.md"
    path.write_text("\n".join(L), encoding="utf-8")
    return path


def _jsonable(o: Any) -> Any:
    if isinstance(o, dict):
        return {str(k): _jsonable(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [_jsonable(v) for v in o]
    if isinstance(o, np.ndarray):
        return None
    if isinstance(o, (np.floating, float)):
        return float(o) if math.isfinite(o) else None
    if isinstance(o, np.integer):
        return int(o)
    return o


# ====================================================================== entry points
def run_bench(quick: bool, out_dir: Path, backends: list[str] | None = None) -> int:
    """Run the benchmark; write RESULTS.md, results.json and PNG plots into ``out_dir``. Returns 0 on success."""
    st = Settings(quick)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(20240611)
    t_start = perf()
    names, notes = _backends(backends)
    res: dict[str, Any] = {
        "quick": quick,
        "machine": machine_info(),
        "workloads": {},
        "transfer": {},
        "memory": {},
        "notes": notes,
    }
    prog = _Progress(quick)
    prog.add(len(names) * 3 + len(names) + 4)
    with tempfile.TemporaryDirectory(prefix="jsml-bench-") as tmpd:
        tmp = Path(tmpd)
        for w in WORKLOADS:
            res["workloads"][w] = bench_workload(w, names, st, rng, tmp, prog, notes)
    for be in names:
        try:
            res["transfer"][be] = bench_transfer(be, st, rng)
        except Exception as exc:
            res["transfer"][be] = {"error": f"{type(exc).__name__}: {exc}"}
        prog.step(f"transfer {be}")
    res["hotswap"] = {}
    for be in names[:1] if quick else names:
        for bundles in (False, True):
            label = f"{be}-bundle" if bundles else be
            try:
                tmp_hs = Path(tempfile.mkdtemp(prefix="jsml-hs-"))
                res["hotswap"][label] = bench_hotswap(be, st.hotswap_swaps, tmp_hs, bundles=bundles)
            except Exception as exc:
                res["hotswap"][label] = {"error": f"{type(exc).__name__}: {exc}"}
            prog.step(f"hot swap {label}")
            if res["hotswap"][label].get("load_min_s", 0.0) >= 0.1:
                break  # the artifact load is already slow enough for the target; bundles add nothing
    res["microbatch"] = {}
    # every backend with the kernels runtime (the Wine MLP is Dense-only), plus tfjs on the first one
    mb_runs = [(b, "kernels") for b in names] + [(b, "tfjs") for b in names[:1]]
    if quick:
        mb_runs = mb_runs[:1]
    x_wine = res["workloads"]["wine"].pop("x_for_mb")
    res["workloads"]["digits_cnn"].pop("x_for_mb", None)
    for be, runtime in mb_runs:
        label = f"{be}-{runtime}"
        try:
            m = bench_microbatch(be, REF_DIR / "wine", x_wine, st, runtime)
            ref = NumpyModel.from_dir(REF_DIR / "wine").predict(x_wine[:64])
            diff = float(np.abs(m.pop("stream_check") - ref).max())
            m["max_abs_diff"] = diff
            if diff > 1e-4 or m["wrong"]:
                notes.append(f"micro-batching on {label}: results disagree (max diff {diff:.1e}, wrong {m['wrong']})")
            res["microbatch"][label] = m
        except Exception as exc:
            res["microbatch"][label] = {"error": f"{type(exc).__name__}: {exc}"}
        prog.step(f"microbatch {label}")
    mem_kinds = ["numpy", "onnxruntime", *names]
    mem_workloads = ["wine"] if quick else list(WORKLOADS)
    prog.add(len(mem_kinds) * len(mem_workloads))
    for w in mem_workloads:
        for kind in mem_kinds:
            label = "onnxruntime-1t" if kind == "onnxruntime" else kind
            res["memory"][f"{w}/{label}"] = run_mem_probe(kind, REF_DIR / w, st.mem_models)
            prog.step(f"memory {w} {kind}")
    if "quickjs" in names:
        res["memory_quickjs_many"] = run_mem_probe("quickjs", REF_DIR / "wine", st.mem_quickjs_models, timeout=900)
    else:
        notes.append("100-model QuickJS memory test skipped: quickjs backend unavailable")
    prog.step("memory quickjs many")
    prog.close()
    notes.extend(ONNX_NOTE)
    res["elapsed_s"] = perf() - t_start
    res["targets"] = evaluate_targets(res, st)
    plots = _plots(res, out_dir)
    report = write_report(res, st, out_dir, plots)
    (out_dir / "results.json").write_text(json.dumps(_jsonable(res), indent=1))
    _print_summary(res, report)
    return 0


def _print_summary(res: dict[str, Any], report: Path) -> None:
    print(f"jsengine-ml bench: {res['elapsed_s']:.0f} s, report {report}")
    for w, wr in res["workloads"].items():
        agree = ", ".join(f"{n} {c.get('max_abs_diff', math.nan):.1e}" for n, c in wr["contenders"].items())
        print(f"  outputs agree with numpy ({w}, max abs diff; ok ≤ 1e-4): {agree}")
    for t in res["targets"]:
        met = "n/a" if t["met"] is None else ("MET" if t["met"] else "MISSED")
        print(f"  [{met:6}] {t['target']}: {t['measured']}{(' — ' + t['why']) if t['why'] else ''}")
    for n in res["notes"]:
        print(f"  note: {n}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="jsengine-ml bench",
        description="Benchmark jsengine-ml against numpy, "
        "onnxruntime, tfjs-node, an HTTP service and the JSON data path.",
    )
    ap.add_argument("--quick", action="store_true", help="smoke run (small sizes, few repeats; < ~60 s)")
    ap.add_argument("--out", default="bench-results", help="output folder (RESULTS.md, results.json, PNGs)")
    ap.add_argument("--backend", action="append", help="only this backend (repeatable)")
    ap.add_argument("--_mem-probe", dest="mem_probe", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.mem_probe:
        print(json.dumps(_mem_probe(json.loads(args.mem_probe))))
        return 0
    return run_bench(args.quick, Path(args.out), args.backend)


if __name__ == "__main__":
    sys.exit(main())
