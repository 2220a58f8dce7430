"""Where V8's time goes: a compiled model's ``predict`` split into kernels, crossing and Python.

* kernels: ``__jsml.compiled.run`` timed inside the engine, a loop of runs between two
  ``performance.now()`` readings (long enough for the engine clock's resolution);
* crossing: an empty ``engine.call`` round trip with the same arguments as the model's run call;
* Python: the rest of ``predict`` (validation, the copies into and out of the wasm memory, the
  result array), i.e. predict − kernels − crossing;

next to onnxruntime's time for the same rows.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any

from .._types import Array
from .measure import median, perf, time_cell
from .settings import Settings


def _mean_seconds(fn: Callable[[], Any], reps: int) -> float:
    t = perf()
    for _ in range(reps):
        fn()
    return (perf() - t) / reps


#: Runs ``__jsml.compiled.run(id, n)`` for at least ``ms`` milliseconds of the engine clock (started on
#: a tick of it: the clock may tick in whole ms) and returns "[elapsed ms, runs]".
_KERNEL_LOOP = """(function (id, n, ms) {
  var run = __jsml.compiled.run, now = function () { return performance.now(); };
  var s = now(), t0, t, k = 0;
  while ((t0 = now()) === s) {}
  do { for (var i = 0; i < 4; i++) { run(id, n); } k += 4; } while ((t = now()) - t0 < ms);
  return JSON.stringify([t - t0, k]);
})"""


def _kernel_seconds(engine: Any, model_id: int, n: int, loop_s: float) -> float:
    """Seconds per ``__jsml.compiled.run(id, n)``, timed inside the engine over a loop of ``loop_s``."""
    elapsed_ms, runs = json.loads(engine.eval(f"{_KERNEL_LOOP}({model_id}, {n}, {loop_s * 1e3:.3f})"))
    return float(elapsed_ms) / 1e3 / int(runs)


def split_one(model: Any, ort: Any, x: Array, n: int, st: Settings) -> dict[str, float]:
    """The split of ``model.predict(x[:n])`` (``model``: a compiled model on V8).

    Each round times, back to back, a loop of predicts (Python), a loop of runs (inside the engine)
    and a loop of empty calls, each lasting about ``st.split_loop_s``; the medians over the rounds
    are kept, so that the machine's drift hits the three alike.
    """
    engine, model_id, xb = model.engine, model._model_id, x[:n]
    rounds = 3 if st.quick else 5
    engine.eval("globalThis.__bench_noop = function () { return 0; };")
    model.predict(xb)  # reserves room for n rows and leaves xb in the input slot
    est = time_cell(lambda: model.predict(xb), 0, st).seconds
    reps = max(3, math.ceil(st.split_loop_s / max(est, 1e-7)))
    calls = max(20, math.ceil(st.split_loop_s / 1e-4))
    parts: dict[str, list[float]] = {"predict_s": [], "kernel_s": [], "crossing_s": []}
    for _ in range(rounds):
        parts["predict_s"].append(_mean_seconds(lambda: model.predict(xb), reps))
        parts["kernel_s"].append(_kernel_seconds(engine, model_id, n, st.split_loop_s))
        parts["crossing_s"].append(_mean_seconds(lambda: engine.call("__bench_noop", model_id, n), calls))
    out = {k: median(v) for k, v in parts.items()}
    out["python_s"] = out["predict_s"] - out["kernel_s"] - out["crossing_s"]
    if ort is not None:
        out["ort_s"] = median([_mean_seconds(lambda: ort.predict(xb), reps) for _ in range(rounds)])
    return out


def split_sizes(st: Settings) -> tuple[int, int]:
    return 1, max(st.sizes)
