"""The data path vs JSON: moving matrices in and out of each engine, and a model fed either way.

* Transfer: ``put_array`` / ``get_array`` / an identity ``transform`` of a float32 matrix against
  the JSON way (``json.dumps`` of nested lists → ``JSON.parse`` → ``JSON.stringify`` → ``json.loads``),
  plus the empty-call overhead.
* Model: the Wine model, compiled, on V8: its own zero-copy data path against the same loaded plan
  fed rows as JSON (:class:`~jsengine_ml.bench.contenders.JsonPathModel`), at every batch size.
"""

from __future__ import annotations

from dataclasses import replace
from functools import partial
from typing import Any

import numpy as np

from .._types import Array
from ..backends import create_engine
from .checks import check, fail_on
from .contenders import JsonPathModel
from .measure import latencies, median, time_cell
from .settings import Settings


def _transfer_times(eng: Any, x: Array, big: Array, st: Settings) -> dict[str, Any]:
    def json_rt() -> Array:
        return np.asarray(eng.call("__bench_echo", x.tolist()), dtype=np.float32)

    slow = replace(st, repeats=max(3, st.repeats // 3))
    t = {
        "put_s": time_cell(lambda: eng.put_array("__bx", x), 0, st).seconds,
        "get_s": time_cell(lambda: eng.get_array("__bx"), 0, st).seconds,
        "roundtrip_s": time_cell(lambda: eng.transform("__bench_id", x), 0, st).seconds,
        "json_s": time_cell(json_rt, 0, slow).seconds,
        "put_large_s": time_cell(lambda: eng.put_array("__bbig", big), 0, slow).seconds,
        "get_large_s": time_cell(lambda: eng.get_array("__bbig"), 0, slow).seconds,
    }
    t["exact"] = bool(
        np.array_equal(eng.get_array("__bx").reshape(x.shape), x)
        and np.array_equal(eng.transform("__bench_id", x), x)
        and np.array_equal(json_rt(), x)
        and np.array_equal(eng.get_array("__bbig").reshape(big.shape), big)
    )
    return t


def bench_transfer(backend: str, st: Settings, rng: np.random.Generator) -> dict[str, Any]:
    """Call overhead, in / out / round-trip bandwidth and the JSON round trip on ``backend``."""
    x = rng.standard_normal((st.transfer_rows, 13)).astype(np.float32)
    big = rng.standard_normal((st.transfer_rows_large, 13)).astype(np.float32)
    eng = create_engine(backend)
    try:
        eng.eval(
            "globalThis.__bench_noop = function () { return 0; };"
            "globalThis.__bench_echo = function (a) { return a; };"
            "globalThis.__bench_id = function (d, s) { return {data: d, shape: s}; };"
        )
        noop = latencies(lambda: eng.call("__bench_noop"), 50 if st.quick else 400, 0.5)
        t = _transfer_times(eng, x, big, replace(st, repeats=st.transfer_repeats))
    finally:
        eng.close()
    mb = x.nbytes / 1e6
    return {
        **t, "bytes": x.nbytes, "large_bytes": big.nbytes, "call_overhead_s": median(noop),
        "put_MBps": mb / t["put_s"], "get_MBps": mb / t["get_s"], "roundtrip_MBps": 2 * mb / t["roundtrip_s"],
        "json_MBps": 2 * mb / t["json_s"], "speedup_vs_json": t["json_s"] / t["roundtrip_s"],
        "put_large_MBps": big.nbytes / 1e6 / t["put_large_s"], "get_large_MBps": big.nbytes / 1e6 / t["get_large_s"],
    }


def bench_json_path(workload: str, model: Any, x: Array, want: dict[int, Array], st: Settings
                    ) -> dict[int, dict[str, float]]:
    """{batch: {data_path_s, json_s, speedup}} for ``model`` (compiled, V8) fed both ways."""
    json_model = JsonPathModel(model)
    out: dict[int, dict[str, float]] = {}
    bad = []
    for n in st.sizes:
        direct = time_cell(partial(model.predict, x[:n]), 0, st)
        via_json = time_cell(partial(json_model.predict, x[:n]), direct.seconds * 20, st)
        diff, d = check(workload, "v8-compiled fed JSON", via_json.output, want[n])
        bad += [d] if d else []
        out[n] = {"data_path_s": direct.seconds, "json_s": via_json.seconds,
                  "speedup": via_json.seconds / direct.seconds, "max_abs_diff": diff}
    fail_on(bad)
    return out
