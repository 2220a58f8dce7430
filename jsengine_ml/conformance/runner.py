"""Run the engine conformance suite for installed backends and print one table (``jsengine-ml conformance``).

The runner writes a throw-away test module with one :class:`EngineConformance` subclass per selected
backend, runs pytest in-process with a small collecting plugin, shows a progress bar, and prints
one row per case and one column per backend (pass / FAIL / xfail / skip), then totals.
"""

from __future__ import annotations

import re
import sys
import tempfile
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from ..backends import available_backends

__all__ = ["run_conformance"]

PASS, FAIL, XFAIL, XPASS, SKIP = "pass", "FAIL", "xfail", "XPASS", "skip"
#: Outcomes that make the run fail (an XPASS under strict=True means an expected failure is fixed:
#: the backend's ``known_bugs`` must be updated).
BAD = (FAIL, XPASS)


def run_conformance(
    backends: list[str] | None = None,
    *,
    extra_pytest_args: tuple[str, ...] | list[str] = (),
    stream: TextIO = sys.stdout,
) -> int:
    """Run the conformance suite for ``backends`` (default: every available one) and print a table.

    ``extra_pytest_args`` go to pytest as they are (e.g. ``["-k", "float32", "-m", "not slow"]``).
    Returns 0 when every case passed, was skipped or failed as the backend declared; 1 otherwise
    (an unexpected failure, a strict XPASS, an unknown backend, nothing to run or a pytest error).
    """
    import pytest

    infos = {info.name: info for info in available_backends()}
    if backends is None:
        selected = [name for name, info in infos.items() if info.available]
    else:
        unknown = [name for name in backends if name not in infos]
        if unknown:
            stream.write(f"unknown backend(s): {', '.join(unknown)}; known: {', '.join(infos)}\n")
            return 1
        selected = [name for name in dict.fromkeys(backends) if infos[name].available]
    not_run = [info for info in infos.values() if not info.available and (backends is None or info.name in backends)]
    for info in not_run:
        stream.write(f"{info.name}: unavailable, not run: {info.reason}\n")
    if not selected:
        stream.write("no available backend to run the conformance suite on\n")
        return 1

    classes = {f"Test_{_identifier(name)}_{i}": name for i, name in enumerate(selected)}
    collector = _Collector(classes, stream)
    if "jsengine_ml.conformance.engine_suite" not in sys.modules:
        pytest.register_assert_rewrite("jsengine_ml.conformance.engine_suite", "jsengine_ml.conformance.engine")
    with tempfile.TemporaryDirectory(prefix="jsengine-ml-conformance-") as tmp:
        module = Path(tmp) / f"test_conformance_{uuid.uuid4().hex[:8]}.py"
        lines = ["from jsengine_ml.conformance.engine_suite import EngineConformance", ""]
        for class_name, backend in classes.items():
            lines += ["", f"class {class_name}(EngineConformance):", f"    backend = {backend!r}", ""]
        module.write_text("\n".join(lines), encoding="utf-8")
        ini = Path(tmp) / "pytest.ini"  # keep the caller's project configuration out of the run
        ini.write_text("[pytest]\n", encoding="utf-8")
        args = [
            str(module), "-p", "no:cacheprovider", "-p", "no:terminal", "--import-mode=importlib",
            "--rootdir", tmp, "-c", str(ini), "-W", "ignore::pytest.PytestAssertRewriteWarning",
            *extra_pytest_args,
        ]
        try:
            code = pytest.main(args, plugins=[collector])
        finally:
            collector.close_progress()
    collector.print_table([classes[c] for c in classes])
    exit_code = int(code)
    if exit_code not in (0, 1, 5):  # interrupted, internal error, usage error
        stream.write(f"pytest stopped with exit code {exit_code}\n")
        return 1
    if collector.total == 0:
        stream.write("no conformance case was selected\n")
        return 1
    return 1 if collector.unexpected() else 0


def _identifier(name: str) -> str:
    return re.sub(r"\W", "_", name)


@dataclass
class _Collector:
    """pytest plugin: records one outcome per (case, backend) and drives the progress bar."""

    classes: dict[str, str]
    stream: TextIO
    outcomes: dict[tuple[str, str], str] = field(default_factory=dict)
    details: dict[tuple[str, str], str] = field(default_factory=dict)
    order: list[str] = field(default_factory=list)
    total: int = 0
    _bar: Any = None

    # ------------------------------------------------------------------ pytest hooks
    def pytest_configure(self, config: Any) -> None:
        config.addinivalue_line("markers", "slow: long-running conformance cases")

    def pytest_collection_finish(self, session: Any) -> None:
        items = session.items  # after -k / -m deselection
        self.total = len(items)
        for item in items:
            case = self._case(item.nodeid)[0]
            if case not in self.order:
                self.order.append(case)
        self._bar = _progress(self.total)

    def pytest_collectreport(self, report: Any) -> None:
        if report.failed:
            self.stream.write(f"collection failed: {report.nodeid}\n{report.longreprtext}\n")

    def pytest_runtest_logreport(self, report: Any) -> None:
        key = self._case(report.nodeid)
        if report.when == "call":
            if hasattr(report, "wasxfail"):
                outcome = XFAIL if report.skipped else XPASS
            elif report.failed and str(report.longrepr).startswith("[XPASS(strict)]"):
                outcome = XPASS
            else:
                outcome = PASS if report.passed else SKIP if report.skipped else FAIL
        elif report.failed:  # error in setup / teardown
            outcome = FAIL
        elif report.skipped and report.when == "setup":
            outcome = XFAIL if hasattr(report, "wasxfail") else SKIP
        else:
            return
        if self.outcomes.get(key) in BAD:  # keep a call failure even if teardown passes
            return
        self.outcomes[key] = outcome
        if outcome in BAD:
            self.details[key] = report.longreprtext or str(report.longrepr)
        elif outcome == SKIP and isinstance(report.longrepr, tuple):
            self.details[key] = str(report.longrepr[2])

    def pytest_runtest_logfinish(self, nodeid: str, location: Any) -> None:
        if self._bar is not None:
            self._bar.update(self._case(nodeid)[1] + " " + self._case(nodeid)[0])

    # ------------------------------------------------------------------ results
    def close_progress(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def _case(self, nodeid: str) -> tuple[str, str]:
        parts = nodeid.split("::")
        backend = self.classes.get(parts[-2], parts[-2]) if len(parts) >= 3 else "?"
        return parts[-1], backend

    def unexpected(self) -> list[tuple[str, str]]:
        return [key for key, outcome in self.outcomes.items() if outcome in BAD]

    def print_table(self, backends: list[str]) -> None:
        out = self.stream
        if not self.order:
            return
        width = max(len(case) for case in [*self.order, "case"])
        cols = [max(len(b), 5) for b in backends]
        header = "case".ljust(width) + "  " + "  ".join(b.ljust(w) for b, w in zip(backends, cols, strict=True))
        out.write("\n" + header + "\n" + "-" * len(header) + "\n")
        for case in self.order:
            cells = [self.outcomes.get((case, b), "-").ljust(w) for b, w in zip(backends, cols, strict=True)]
            out.write(case.ljust(width) + "  " + "  ".join(cells).rstrip() + "\n")
        out.write("-" * len(header) + "\n")
        for backend in backends:
            counts = Counter(outcome for (_, b), outcome in self.outcomes.items() if b == backend)
            parts = [f"{counts[o]} {o}" for o in (PASS, FAIL, XPASS, XFAIL, SKIP) if counts[o]]
            out.write(f"{backend}: {', '.join(parts) or 'nothing ran'}\n")
        bad = self.unexpected()
        if bad:
            out.write(f"\n{len(bad)} unexpected result(s):\n")
            for case, backend in bad:
                out.write(f"\n=== {backend} :: {case} ({self.outcomes[(case, backend)]})\n")
                out.write(self.details.get((case, backend), "").rstrip() + "\n")
        out.flush()


class _TextBar:
    """Minimal progress bar on stderr for when tqdm is not installed."""

    def __init__(self, total: int):
        self.total = max(total, 1)
        self.done = 0

    def update(self, label: str) -> None:
        self.done += 1
        filled = int(30 * self.done / self.total)
        sys.stderr.write(f"\r[{'#' * filled}{'.' * (30 - filled)}] {self.done}/{self.total} {label[:60]:<60}")
        sys.stderr.flush()

    def close(self) -> None:
        sys.stderr.write("\n")
        sys.stderr.flush()


class _TqdmBar:
    def __init__(self, total: int):
        from tqdm import tqdm

        self._bar = tqdm(total=total, unit="case", desc="conformance", file=sys.stderr, leave=False)

    def update(self, label: str) -> None:
        self._bar.set_postfix_str(label[:50], refresh=False)
        self._bar.update(1)

    def close(self) -> None:
        self._bar.close()


def _progress(total: int) -> _TextBar | _TqdmBar:
    try:
        return _TqdmBar(total)
    except ImportError:
        return _TextBar(total)
