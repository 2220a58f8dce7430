"""The targets: each a name, what was measured, the ratio, the threshold, met or missed.

1. V8 compiled at the largest batch: Wine and the digits CNN within 2× of onnxruntime (1 thread)
   [ratio = ORT rows/s ÷ V8 compiled rows/s ≤ 2] and faster than numpy.
2. QuickJS and Duktape compiled ≥ 5× the rows/s of tfjs on the same engine, every reference model,
   at the largest batch both were measured at (the batch is named).
3. V8 compiled at batch 1: p50 ≤ 0.6 × the loopback HTTP service's p50 (Wine, same run).
4. Wine compiled on V8: load ≤ 20 ms and RSS ≤ 10 MiB per loaded model (separate process).
5. SpiderMonkey (the per-record engine): Wine compiled batch-1 p50 ≤ 30 µs and ≤ 0.1 × the HTTP
   service's p50; batch 10,000 within 1.2× of V8 compiled; an empty call ≤ 10 µs.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from .measure import pct
from .settings import Settings

MIB = 2**20
#: The batch size targets 1 and 2 are stated at.
TARGET_BATCH = 10_000


@dataclass(frozen=True)
class Target:
    id: str
    name: str
    measured: str
    ratio: float | None
    threshold: str
    met: bool | None  # None: not measured
    detail: str = ""

    @property
    def verdict(self) -> str:
        return "n/a" if self.met is None else ("met" if self.met else "missed")

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "verdict": self.verdict}


def rate(n: int, seconds: float) -> str:
    r = n / seconds
    return f"{r / 1e6:.3g} M" if r >= 1e6 else (f"{r / 1e3:.3g} k" if r >= 1e3 else f"{r:.3g}")


def _largest_common(a: dict[str, Any], b: dict[str, Any]) -> int | None:
    both = set(a.get("times", {})) & set(b.get("times", {}))
    return max(both) if both else None


def _batch_note(n: int, wanted: int, *entries: dict[str, Any]) -> str:
    if n == wanted:
        return ""
    why = "; ".join(f"{e['_name']}: {e['skipped'][wanted]}" for e in entries if wanted in e.get("skipped", {}))
    return f"batch {wanted:,} not measured ({why or 'not in this run’s sizes'})"


def _named(cs: dict[str, Any], name: str) -> dict[str, Any] | None:
    c = cs.get(name)
    return {**c, "_name": name} if c else None


def target_onnx(res: dict[str, Any], st: Settings) -> list[Target]:
    out = []
    for w in ("wine", "digits_cnn"):
        cs = res["workloads"].get(w, {}).get("contenders", {})
        v8, ort, npy = _named(cs, "v8-compiled"), _named(cs, "onnxruntime-1t"), _named(cs, "numpy")
        name = f"V8 compiled within 2× of onnxruntime (1 thread) and faster than numpy, {w}"
        n = _largest_common(v8, ort) if v8 and ort else None
        if v8 is None or ort is None or npy is None or n is None or n not in npy["times"]:
            out.append(Target("1", name, "not measured (v8-compiled, onnxruntime-1t or numpy missing)", None,
                              "≤ 2 and > numpy", None))
            continue
        ratio = v8["times"][n] / ort["times"][n]
        vs_numpy = npy["times"][n] / v8["times"][n]
        measured = (f"batch {n:,}: ORT {rate(n, ort['times'][n])} rows/s ÷ V8 compiled {rate(n, v8['times'][n])} "
                    f"rows/s = {ratio:.2f}; numpy {rate(n, npy['times'][n])} rows/s (V8 {vs_numpy:.2f}× numpy)")
        out.append(Target("1", name, measured, ratio, "≤ 2 and > numpy", ratio <= 2 and vs_numpy > 1,
                          _batch_note(n, TARGET_BATCH, v8, ort)))
    return out


def target_interpreters(res: dict[str, Any], st: Settings) -> list[Target]:
    out = []
    for be in ("quickjs", "duktape"):
        for w, wr in res["workloads"].items():
            cs = wr["contenders"]
            comp, tfjs = _named(cs, f"{be}-compiled"), _named(cs, f"{be}-tfjs")
            name = f"{be} compiled ≥ 5× tfjs on {be}, {w}"
            n = _largest_common(comp, tfjs) if comp and tfjs else None
            if comp is None or tfjs is None or n is None:
                missing = wr.get("failed", {}).get(f"{be}-compiled") or wr.get("failed", {}).get(f"{be}-tfjs")
                out.append(Target("2", name, f"not measured{f' ({missing})' if missing else ''}", None, "≥ 5", None))
                continue
            ratio = tfjs["times"][n] / comp["times"][n]
            measured = (f"batch {n:,}: compiled {rate(n, comp['times'][n])} rows/s ÷ tfjs "
                        f"{rate(n, tfjs['times'][n])} rows/s = {ratio:.1f}")
            out.append(Target("2", name, measured, ratio, "≥ 5", ratio >= 5, _batch_note(n, TARGET_BATCH, comp, tfjs)))
    return out


def target_latency(res: dict[str, Any]) -> list[Target]:
    cs = res["workloads"].get("wine", {}).get("contenders", {})
    v8, http = cs.get("v8-compiled"), cs.get("http-service")
    name = "V8 compiled batch-1 p50 ≤ 0.6 × the loopback HTTP service's p50, wine"
    if not v8 or not http or not v8.get("latency") or not http.get("latency"):
        return [Target("3", name, "not measured (v8-compiled or http-service missing)", None, "≤ 0.6", None)]
    p_v8, p_http = pct(v8["latency"], 50), pct(http["latency"], 50)
    ratio = p_v8 / p_http
    measured = f"V8 compiled p50 {p_v8 * 1e3:.3f} ms ÷ HTTP p50 {p_http * 1e3:.3f} ms = {ratio:.2f}"
    return [Target("3", name, measured, ratio, "≤ 0.6", ratio <= 0.6)]


def target_load(res: dict[str, Any]) -> list[Target]:
    probe = res.get("memory", {}).get("wine/v8-compiled")
    names = ("Wine compiled on V8: load ≤ 20 ms", "Wine compiled on V8: RSS per loaded model ≤ 10 MiB")
    if not probe or "error" in probe:
        why = f"not measured ({probe['error'][:200]})" if probe else "not measured"
        return [Target("4", n, why, None, t, None) for n, t in zip(names, ("≤ 20 ms", "≤ 10 MiB"), strict=True)]
    load_ms, mib = probe["load_s_median"] * 1e3, probe["per_model"] / MIB
    split = ""
    if "engine_s_median" in probe:
        split = (f"of which a bare engine {probe['engine_s_median'] * 1e3:.1f} ms and the model onto an existing "
                 f"engine {probe['model_on_engine_s_median'] * 1e3:.1f} ms")
    n = probe["n"]
    return [
        Target("4", names[0], f"median load {load_ms:.1f} ms over {n} models (fresh process)", load_ms / 20,
               "≤ 20 ms", load_ms <= 20, split),
        Target("4", names[1], f"{mib:.2f} MiB per model ({n} models, RSS growth after gc)", mib / 10,
               "≤ 10 MiB", mib <= 10),
    ]


def target_spidermonkey(res: dict[str, Any]) -> list[Target]:
    cs = res["workloads"].get("wine", {}).get("contenders", {})
    sm, http, v8 = _named(cs, "spidermonkey-compiled"), cs.get("http-service"), _named(cs, "v8-compiled")
    names = ("SpiderMonkey compiled batch-1 p50 ≤ 30 µs, wine", "SpiderMonkey compiled batch-1 p50 ≤ 0.1 × the "
             "HTTP service's p50, wine", "SpiderMonkey compiled within 1.2× of V8 compiled, wine",
             "SpiderMonkey empty call ≤ 10 µs")
    out = []
    if sm and sm.get("latency"):
        p50 = pct(sm["latency"], 50)
        out.append(Target("5", names[0], f"p50 {p50 * 1e6:.1f} µs", p50 / 30e-6, "≤ 30 µs", p50 <= 30e-6))
        if http and http.get("latency"):
            ratio = p50 / pct(http["latency"], 50)
            out.append(Target("5", names[1], f"p50 {p50 * 1e6:.1f} µs ÷ HTTP p50 "
                              f"{pct(http['latency'], 50) * 1e6:.0f} µs = {ratio:.3f}", ratio, "≤ 0.1", ratio <= 0.1))
        else:
            out.append(Target("5", names[1], "not measured (http-service missing)", None, "≤ 0.1", None))
    else:
        out += [Target("5", n, "not measured (spidermonkey-compiled missing)", None, t, None)
                for n, t in zip(names[:2], ("≤ 30 µs", "≤ 0.1"), strict=True)]
    n = _largest_common(sm, v8) if sm and v8 else None
    if sm is None or v8 is None or n is None:
        out.append(Target("5", names[2], "not measured", None, "≤ 1.2", None))
    else:
        ratio = sm["times"][n] / v8["times"][n]
        out.append(Target("5", names[2], f"batch {n:,}: SpiderMonkey {rate(n, sm['times'][n])} rows/s, V8 "
                          f"{rate(n, v8['times'][n])} rows/s: time ratio {ratio:.2f}", ratio, "≤ 1.2", ratio <= 1.2,
                          _batch_note(n, TARGET_BATCH, sm, v8)))
    transfer = res.get("transfer", {}).get("spidermonkey", {})
    if "call_overhead_s" in transfer:
        us = transfer["call_overhead_s"] * 1e6
        out.append(Target("5", names[3], f"{us:.1f} µs per empty engine.call", us / 10, "≤ 10 µs", us <= 10))
    else:
        out.append(Target("5", names[3], "not measured", None, "≤ 10 µs", None))
    return out


def evaluate(res: dict[str, Any], st: Settings) -> list[Target]:
    return [*target_onnx(res, st), *target_interpreters(res, st), *target_latency(res), *target_load(res),
            *target_spidermonkey(res)]


