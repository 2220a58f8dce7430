"""PNG plots: throughput vs batch size per workload (log-log) and batch-1 latency per contender."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from .measure import pct

_COLORS = {"v8": "tab:blue", "quickjs": "tab:green", "duktape": "tab:red", "numpy": "black",
           "onnxruntime": "tab:purple", "node": "tab:orange", "http": "tab:gray"}
_LINES = {"compiled": "-", "tfjs": "--", "bundle-compiled": "-.", "bundle-tfjs": ":"}
_MARKERS = {"compiled": "o", "tfjs": "s", "bundle-compiled": "^", "bundle-tfjs": "v"}


def style(name: str, c: dict[str, Any]) -> dict[str, Any]:
    """One colour per engine or peer, one line style and marker per runtime variant."""
    variant = c.get("variant", "")
    return {"color": _COLORS.get(c.get("family", ""), "tab:brown"), "label": name,
            "linestyle": _LINES.get(variant, (0, (1, 1))), "marker": _MARKERS.get(variant, "D")}


def _si(value: float, _pos: Any = None) -> str:
    for scale, suffix in ((1e6, "M"), (1e3, "k")):
        if abs(value) >= scale:
            return f"{value / scale:g}{suffix}"
    return f"{value:g}"


def _log_axis(axis: Any) -> None:
    """Log scale with plain decade labels and no minor ticks (mathtext tick labels are slow to draw)."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullLocator

    axis.set_major_locator(LogLocator(base=10))
    axis.set_major_formatter(FuncFormatter(_si))
    axis.set_minor_locator(NullLocator())


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def throughput_plot(workload: str, title: str, contenders: dict[str, Any], out_dir: Path) -> str:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 5.2))
    for name, c in contenders.items():
        pts = sorted((n, n / t) for n, t in c["times"].items() if t and math.isfinite(t))
        if pts:
            ax.plot([p[0] for p in pts], [p[1] for p in pts], **style(name, c))
    ax.set_xscale("log")
    ax.set_yscale("log")
    _log_axis(ax.xaxis)
    _log_axis(ax.yaxis)
    ax.set_xlabel("batch size (rows)")
    ax.set_ylabel("rows / s (median)")
    ax.set_title(f"Throughput: {title}")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    name = f"throughput_{workload}.png"
    fig.savefig(out_dir / name, dpi=100)
    plt.close(fig)
    return name


def latency_plot(workloads: dict[str, Any], out_dir: Path) -> str:
    """One panel per workload: p50 bar and p90 whisker per contender (log scale)."""
    plt = _pyplot()
    names = list(workloads)
    cols = min(3, len(names))
    rows = math.ceil(len(names) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(6.2 * cols, 5.2 * rows), squeeze=False)
    for ax, w in zip(axes.flat, names, strict=False):
        cs = {n: c for n, c in workloads[w]["contenders"].items() if c.get("latency")}
        labels = list(cs)
        p50 = np.array([pct(cs[n]["latency"], 50) for n in labels]) * 1e3
        p90 = np.array([pct(cs[n]["latency"], 90) for n in labels]) * 1e3
        y = np.arange(len(labels))
        ax.barh(y, p50, xerr=[np.zeros_like(p50), p90 - p50], color=[style(n, cs[n])["color"] for n in labels],
                alpha=0.8, capsize=2)
        ax.set_yticks(y, labels, fontsize=7)
        ax.invert_yaxis()
        ax.set_xscale("log")
        _log_axis(ax.xaxis)
        ax.set_xlabel("ms per 1-row predict (bar p50, whisker p90)")
        ax.set_title(f"Batch-1 latency: {w}")
        ax.grid(True, axis="x", alpha=0.3)
    for ax in list(axes.flat)[len(names):]:
        ax.axis("off")
    # fixed margins for the contender labels (tight_layout's text measuring costs seconds)
    fig.subplots_adjust(left=0.08, right=0.98, top=0.95, bottom=0.08, wspace=0.55, hspace=0.3)
    fig.savefig(out_dir / "latency_batch1.png", dpi=100)
    plt.close(fig)
    return "latency_batch1.png"


def write_plots(res: dict[str, Any], out_dir: Path) -> list[str]:
    files = [throughput_plot(w, wr["title"], wr["contenders"], out_dir) for w, wr in res["workloads"].items()]
    files.append(latency_plot(res["workloads"], out_dir))
    return files
