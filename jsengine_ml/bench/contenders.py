"""The contenders: every engine × runtime, bundles, numpy, onnxruntime, tfjs in Node, an HTTP service.

In-process contenders share one interface (:class:`Contender`: ``predict`` a 2-D batch, ``close``).
Engine contenders are ``<backend>-<variant>``:

* ``compiled``: ``jsengine_ml.load(dir, backend, runtime="compiled")`` (WebAssembly SIMD kernels on
  V8, ES5 kernels on QuickJS / Duktape), the default runtime for these models;
* ``tfjs``: the same artifact on tfjs 4.22 (``runtime="tfjs"``);
* ``bundle-compiled`` / ``bundle-tfjs``: a single-file bundle (``jsengine_ml.bundle.write_bundle``)
  of either runtime, loaded with ``jsengine_ml.load(bundle.js, backend)``.

Out-of-process peers: tfjs in Node (one ``node`` process for every workload, see
``benchmarks/node_tfjs_bench.js``; results come back as files) and the loopback HTTP service
(:mod:`jsengine_ml.bench.http_service`, the numpy reference behind HTTP/1.1 + JSON).
"""

from __future__ import annotations

import http.client
import json
import shutil
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np

from .._types import Array
from ..engine import Engine
from .measure import perf
from .settings import Settings
from .workloads import NumpyReference, Workload

ENGINE_VARIANTS = ("compiled", "tfjs", "bundle-compiled", "bundle-tfjs")
PEERS = ("numpy", "onnxruntime-1t", "tfjs-node", "http-service")


class Contender:
    """A model scored in this process: ``predict`` an (n, features) matrix, ``close`` it."""

    def __init__(self, name: str, family: str, variant: str, model: Any, load_s: float, note: str = ""):
        self.name, self.family, self.variant = name, family, variant
        self.model, self.load_s, self.note = model, load_s, note

    @property
    def kind(self) -> str:
        return "peer" if self.family in ("numpy", "onnxruntime", "http", "node") else "engine"

    def predict(self, x: Array) -> Array:
        return np.asarray(self.model.predict(x))

    def close(self) -> None:
        self.model.close()


def _timed(load: Any) -> tuple[Any, float]:
    t = perf()
    model = load()
    return model, perf() - t


def numpy_contender(w: Workload) -> Contender:
    model, s = _timed(lambda: NumpyReference(w.model_dir))
    model.predict(w.rows(np.random.default_rng(0), 1))
    return Contender("numpy", "numpy", "", model, s, "jsengine_ml.reference.forward, float32")


def ort_contender(w: Workload) -> Contender:
    from .onnx import OrtModel

    model, s = _timed(lambda: OrtModel.from_graph(w.graph))
    return Contender("onnxruntime-1t", "onnxruntime", "", model, s, "ONNX via onnx.helper, 1 thread")


class EngineFactory:
    """Loads engine contenders; owns the bundles written and the engines shared by tfjs models."""

    def __init__(self, st: Settings, tmp: Path):
        self.st, self.tmp = st, tmp
        self.shared: dict[str, Engine] = {}
        self.bundles: dict[tuple[str, str], Path] = {}

    def bundle(self, w: Workload, runtime: str) -> Path:
        from ..bundle import write_bundle

        key = (w.name, runtime)
        if key not in self.bundles:
            self.bundles[key] = write_bundle(w.model_dir, self.tmp / f"{w.name}.{runtime}.bundle.js", runtime=runtime)
        return self.bundles[key]

    def bundle_sizes(self) -> dict[str, int]:
        return {f"{w}/{rt}": p.stat().st_size for (w, rt), p in self.bundles.items()}

    def load(self, w: Workload, backend: str, variant: str) -> Contender:
        from ..backends import create_engine
        from ..model import load

        note = ""
        if variant.startswith("bundle-"):
            path = self.bundle(w, variant.split("-", 1)[1])
            model, s = _timed(lambda: load(path, backend))
        elif variant == "tfjs" and self.st.share_tfjs_engine:
            if backend not in self.shared:
                self.shared[backend] = create_engine(backend)
            engine = self.shared[backend]
            model, s = _timed(lambda: load(w.model_dir, engine=engine, runtime="tfjs"))
            note = "shared engine"
        else:
            model, s = _timed(lambda: load(w.model_dir, backend, runtime=variant))
        kernels = model.metadata.extra.get("kernels")
        if kernels:
            note = f"{kernels} kernels" + (f"; {note}" if note else "")
        return Contender(f"{backend}-{variant}", backend, variant, model, s, note)

    def close(self) -> None:
        for engine in self.shared.values():
            engine.close()
        self.shared.clear()


def variants_for(w: Workload, backend: str, backends: list[str], st: Settings) -> tuple[str, ...]:
    """The engine variants of ``backend`` on ``w``: bundles only on ``st.bundle_workloads``, tfjs bundles
    only on the first ``st.tfjs_bundle_backends`` backends (None: all)."""
    if st.bundle_workloads is not None and w.name not in st.bundle_workloads:
        return ("compiled", "tfjs")
    if st.tfjs_bundle_backends is not None and backend not in backends[: st.tfjs_bundle_backends]:
        return ("compiled", "tfjs", "bundle-compiled")
    return ENGINE_VARIANTS


def build_contenders(w: Workload, backends: list[str], factory: EngineFactory, ort_missing: str | None
                     ) -> tuple[list[Contender], dict[str, str]]:
    """(loaded contenders, {name: load error}) for one workload; numpy and onnxruntime first."""
    loaders: list[tuple[str, Any]] = [("numpy", lambda: numpy_contender(w))]
    if w.onnx and ort_missing is None:
        loaders.append(("onnxruntime-1t", lambda: ort_contender(w)))
    for be in backends:
        for variant in variants_for(w, be, backends, factory.st):
            loaders.append((f"{be}-{variant}", lambda be=be, variant=variant: factory.load(w, be, variant)))
    loaded, failed = [], {}
    for name, make in loaders:
        try:
            loaded.append(make())
        except Exception as exc:
            failed[name] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:300]}"
    return loaded, failed


# ---------------------------------------------------------------------- the loopback HTTP service
class HttpService:
    """:mod:`jsengine_ml.bench.http_service` in a subprocess, and a keep-alive client for it."""

    def __init__(self, model_dir: Path, max_requests: int):
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "jsengine_ml.bench.http_service", "--model", str(model_dir),
             "--max-requests", str(max_requests), "--idle-timeout", "60"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        line = self.proc.stdout.readline() if self.proc.stdout else ""
        if not line:
            err = self.proc.stderr.read() if self.proc.stderr else ""
            self.close()
            raise RuntimeError(f"the HTTP service did not start: {err[-400:]}")
        self.port = int(json.loads(line)["port"])

    def connect(self) -> http.client.HTTPConnection:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        conn.connect()
        assert conn.sock is not None
        conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return conn

    @staticmethod
    def post(conn: http.client.HTTPConnection, x: Array) -> Array:
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
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream:
                stream.close()


class HttpContender(Contender):
    """The numpy reference behind loopback HTTP/1.1 + JSON, one persistent client connection."""

    def __init__(self, w: Workload, max_requests: int):
        service, s = _timed(lambda: HttpService(w.model_dir, max_requests))
        super().__init__("http-service", "http", "", service, s, "numpy reference behind loopback HTTP/1.1 JSON")
        self.service: HttpService = service
        self.conn = service.connect()

    def predict(self, x: Array) -> Array:
        return self.service.post(self.conn, x)

    def close(self) -> None:
        self.conn.close()
        self.service.close()


# ---------------------------------------------------------------------- tfjs in Node
def benchmarks_dir() -> Path | None:
    """The source checkout's ``benchmarks/`` folder (the Node script lives there), if present."""
    here = Path(__file__).resolve().parents[2] / "benchmarks"
    return here if (here / "node_tfjs_bench.js").is_file() else None


def run_node(workloads: list[Workload], xs: dict[str, Array], st: Settings, tmp: Path
             ) -> tuple[dict[str, dict[str, Any]], str]:
    """tfjs in Node for every workload in one process: ({workload: result}, why skipped or "")."""
    node, bdir = shutil.which("node"), benchmarks_dir()
    if node is None:
        return {}, "node is not on PATH"
    if bdir is None:
        return {}, "benchmarks/node_tfjs_bench.js not found (not a source checkout)"
    from ..runtime import tfjs_dist

    models: list[dict[str, Any]] = []
    for w in workloads:
        x_path = tmp / f"node_x_{w.name}.bin"
        xs[w.name].astype(xs[w.name].dtype.newbyteorder("<")).tofile(x_path)
        models.append({"name": w.name, "model_dir": str(w.model_dir), "x_path": str(x_path), "dtype": w.input_dtype,
                       "input_shape": list(w.input_shape), "n_features": w.n_features,
                       "out_prefix": str(tmp / f"node_out_{w.name}")})
    out_json = tmp / "node_result.json"
    cfg: dict[str, Any] = {"tfjs": str(tfjs_dist(2017).parent.parent), "sizes": list(st.sizes), "repeats": st.repeats,
           "cell_budget_s": st.cell_budget_s, "max_cell_s": st.max_cell_s, "probe_rows": st.probe_rows,
           "latency_samples": st.lat_samples, "latency_budget_s": st.lat_budget_s,
           "latency_min_samples": st.lat_min_samples, "check_rows": st.check_rows,
           "out_json": str(out_json), "models": models}
    cfg_path = tmp / "node_cfg.json"
    cfg_path.write_text(json.dumps(cfg))
    proc = subprocess.run([node, str(bdir / "node_tfjs_bench.js"), str(cfg_path)], capture_output=True, text=True,
                          timeout=3600)
    if proc.returncode != 0:
        return {}, f"node failed: {proc.stderr.strip()[-400:]}"
    raw = json.loads(out_json.read_text())
    return {m["name"]: _node_result(raw, raw["models"][m["name"]], m["out_prefix"]) for m in models}, ""


def _node_result(raw: dict[str, Any], r: dict[str, Any], prefix: str) -> dict[str, Any]:
    if "error" in r:
        return {"error": r["error"].splitlines()[0][:300]}

    def read(suffix: str) -> Array:
        return np.fromfile(f"{prefix}.{suffix}.bin", dtype="<f4")

    times = {int(n): float(t) for n, t in r["times"].items()}
    return {
        "load_s": r["load_s"], "rss_delta": r["rss_delta"], "times": times,
        "runs": {int(n): int(k) for n, k in r["runs"].items()},
        "skipped": {int(n): s for n, s in r["skipped"].items()}, "latency": r["latency"],
        "check": read("check"), "outputs": {n: read(str(n)) for n in times},
        "note": f"tfjs {raw['tfjs']} `{raw['backend']}` backend, node {raw['node']}",
    }


# ---------------------------------------------------------------------- the JSON data path
class JsonPathModel:
    """A compiled V8 model fed the way jsengine-ml's origin fed tfjs: rows in as JSON nested lists
    (``engine.call``), outputs back as a JSON array. Same engine, same plan, same kernels as the
    model's own data path; only the transport differs."""

    def __init__(self, model: Any):
        self.model = model
        self.engine = model.engine
        self.engine.eval(
            "globalThis.__bench_json = function (rows, id) {"
            " var n = rows.length, w = n ? rows[0].length : 0, x = new Float32Array(n * w);"
            " for (var i = 0; i < n; i++) { for (var j = 0; j < w; j++) { x[i * w + j] = rows[i][j]; } }"
            " var r = __jsml.compiled.predict(x, [n, w], id); return Array.prototype.slice.call(r.data); };"
        )

    def predict(self, x: Array) -> Array:
        out = self.engine.call("__bench_json", x.tolist(), self.model._model_id)
        return np.asarray(out, dtype=np.float32).reshape(len(x), -1)
