"""Streaming sections: micro-batching (records → batches) and hot swap (a new version under load).

Both use the default runtime (``runtime="auto"``: compiled for the Wine model).
"""

from __future__ import annotations

import math
import threading
from pathlib import Path
from typing import Any

import numpy as np

from .._types import Array
from .checks import check
from .measure import median, pct, perf, run_threads
from .settings import Settings
from .workloads import NumpyReference


def bench_microbatch(backend: str, model_dir: Path, x: Array, st: Settings) -> dict[str, Any]:
    """Per-record throughput through MicroBatcher: a producer stream per config, closed-loop threads."""
    from ..microbatch import MicroBatcher

    res: dict[str, Any] = {"backend": backend, "configs": {}, "wrong": 0}
    rows = [x[i % len(x)] for i in range(st.mb_records)]
    expect = NumpyReference(model_dir).predict(x[:64])
    for i, (max_batch, delay) in enumerate(st.mb_configs):
        cfg: dict[str, Any] = {"max_batch": max_batch, "max_delay_s": delay}
        with MicroBatcher(path=str(model_dir), backend=backend, max_batch=max_batch, max_delay_s=delay) as mb:
            for f in mb.submit_many(rows[: 2 * max_batch]):  # warm the engine at the batch sizes it will see
                f.result()
            b0, r0 = mb.batches, mb.records
            t = perf()
            outs = [f.result() for f in mb.submit_many(rows)]
            cfg["stream_rps"] = len(rows) / (perf() - t)
            cfg["stream_mean_batch"] = (mb.records - r0) / max(1, mb.batches - b0)
            cfg["max_abs_diff"], _ = check("wine", f"micro-batching on {backend}", np.stack(outs[:64]), expect)
            if i == 0:
                cfg.update(_closed_loop(mb, x, st, expect))
                res["wrong"] = cfg["wrong"]
        res["configs"][f"{max_batch}/{delay * 1e3:g}ms"] = cfg
    res["max_abs_diff"] = max(c["max_abs_diff"] for c in res["configs"].values())
    res["best_rps"] = max(max(c["stream_rps"], c.get("conc_rps", 0.0)) for c in res["configs"].values())
    return res


def _closed_loop(mb: Any, x: Array, st: Settings, expect: Array) -> dict[str, Any]:
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
            if k < len(expect) and not np.allclose(out, expect[k], atol=1e-4):
                wrong[0] += 1
        with lock:
            lat.extend(mine)

    b0, r0 = mb.batches, mb.records
    elapsed = run_threads(submitter, st.mb_threads)
    return {"conc_rps": per * st.mb_threads / elapsed, "conc_threads": st.mb_threads, "conc_p50_s": pct(lat, 50),
            "conc_p99_s": pct(lat, 99), "conc_mean_batch": (mb.records - r0) / max(1, mb.batches - b0),
            "wrong": wrong[0]}


def bench_hotswap(backend: str, swaps: int, tmp: Path, *, bundles: bool = False) -> dict[str, Any]:
    """Swap Wine versions ``swaps`` times under a scoring loop; the scoring thread's pause per swap.

    ``bundles`` swaps single-file tfjs bundles (a slow load: tfjs is evaluated at each one) instead
    of artifacts on the default (compiled) runtime.
    """
    from ..bundle import write_bundle
    from ..hotswap import HotSwapModel
    from ..testing import write_wine_variant

    folders = [write_wine_variant(tmp / f"hs-{backend}-v{i}", seed=i + 1) for i in range(swaps + 1)]
    versions = [write_bundle(f, f / "model.bundle.js", runtime="tfjs") for f in folders] if bundles else folders
    x = np.random.default_rng(7).standard_normal((64, 13)).astype(np.float32)
    loads: list[float] = []
    wrong = 0
    hs = HotSwapModel(backend=backend)
    try:
        for i, (folder, artifact) in enumerate(zip(folders, versions, strict=True)):
            t0 = perf()
            hs.offer(f"v{i}", artifact).result(timeout=600)  # loaded, warmed up and staged
            loads.append(perf() - t0)
            while True:  # score until the new version serves
                out, version = hs.predict_with_version(x)
                if version == f"v{i}":
                    break
            _, bad = check("wine", f"hot swap v{i}", out, NumpyReference(folder).predict(x))
            wrong += bad is not None
        pauses = list(hs.swap_pauses)
    finally:
        hs.close()
    return {"artifact": "tfjs bundle" if bundles else "model.json (compiled)", "swaps": len(pauses),
            "pause_p50_s": median(pauses), "pause_max_s": max(pauses), "load_p50_s": median(loads),
            "load_min_s": min(loads), "wrong": wrong}


def bench_http_clients(service: Any, x: Array, st: Settings) -> dict[str, Any]:
    """Records per second through the HTTP service, one record per request: one sequential client and
    ``st.http_clients`` concurrent keep-alive clients (the micro-batching baseline)."""
    conn = service.connect()
    try:
        n_seq = max(20, st.http_requests // 4)
        t = perf()
        for i in range(n_seq):
            service.post(conn, x[i % len(x) : i % len(x) + 1])
        seq_rps = n_seq / (perf() - t)
    finally:
        conn.close()
    per = max(10, st.http_requests // st.http_clients)
    errors: list[BaseException] = []

    def client(i: int) -> None:
        try:
            c = service.connect()
            for j in range(per):
                k = (i * per + j) % len(x)
                service.post(c, x[k : k + 1])
            c.close()
        except BaseException as exc:  # reported below
            errors.append(exc)

    elapsed = run_threads(client, st.http_clients)
    conc = math.nan if errors else per * st.http_clients / elapsed
    return {"seq_rps": seq_rps, "conc_rps": conc, "conc_clients": st.http_clients,
            "best_rps": max(seq_rps, 0.0 if errors else conc), **({"conc_error": repr(errors[0])} if errors else {})}
