"""The machine and software a run was measured on."""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
from importlib import metadata
from pathlib import Path


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _node_version() -> str | None:
    node = shutil.which("node")
    if not node:
        return None
    try:
        return subprocess.run([node, "--version"], capture_output=True, text=True, timeout=20).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "?"


def machine_info() -> dict[str, str]:
    info = {"CPU": _cpu(), "cores (os.cpu_count)": str(os.cpu_count())}
    if hasattr(os, "sched_getaffinity"):
        info["cores usable (affinity)"] = str(len(os.sched_getaffinity(0)))
    try:
        info["RAM"] = f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.1f} GiB"
        info["load average (1 min) at start"] = f"{os.getloadavg()[0]:.2f}"
    except (ValueError, OSError, AttributeError):
        pass
    info["OS"] = platform.platform()
    info["Python"] = f"{platform.python_implementation()} {platform.python_version()}"
    for pkg in ("numpy", "onnx", "onnxruntime", "mini-racer", "quickjs", "dukpy", "matplotlib"):
        try:
            info[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            info[pkg] = "not installed"
    from ..backends import available_backends

    for b in available_backends():
        if b.available and b.capabilities:
            c = b.capabilities
            flags = f", flags `{c.engine_flags}`" if c.engine_flags else ""
            info[f"engine {b.name}"] = (f"{c.engine} {c.engine_version} via {c.binding} ({c.language}; "
                                        f"WebAssembly: {'yes' if c.webassembly else 'no'}; "
                                        f"zero-copy: {'yes' if c.zero_copy else 'no'}{flags})")
    info["node"] = _node_version() or "not on PATH"
    from ..runtime import TFJS_VERSION

    info["tfjs"] = TFJS_VERSION
    return info
