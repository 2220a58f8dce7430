"""Skip policy: with JSENGINE_ML_NO_UNEXPECTED_SKIPS=1 (set by scripts/test.sh, which CI runs), a
skipped case fails the session unless its reason is one of ALLOWED_SKIPS.

Everything the tests need is installed in CI, so a "module not installed" or "backend unavailable"
skip there means a case silently did not run. What a backend's Capabilities say it cannot do is
allowed (the conformance suites skip with "capability <field> is <value>: ...").
"""

from __future__ import annotations

import os
import re

import pytest

pytest_plugins = ["pytester"]

ENV_VAR = "JSENGINE_ML_NO_UNEXPECTED_SKIPS"
#: Skip reasons that are expected in CI (matched from the start of the reason).
ALLOWED_SKIPS = (
    re.compile(r"capability \w+ is "),
)

#: (node id, reason) of every skip the policy does not allow, for this session.
UNEXPECTED = pytest.StashKey[list[tuple[str, str]]]()


def pytest_configure(config: pytest.Config) -> None:
    config.stash[UNEXPECTED] = []


def _skip_reason(report: pytest.TestReport | pytest.CollectReport) -> str:
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2]).removeprefix("Skipped: ")
    return str(longrepr)


def _police(config: pytest.Config, report: pytest.TestReport | pytest.CollectReport) -> None:
    if os.environ.get(ENV_VAR) != "1" or not report.skipped or hasattr(report, "wasxfail"):
        return
    reason = _skip_reason(report)
    if not any(pattern.match(reason) for pattern in ALLOWED_SKIPS):
        config.stash[UNEXPECTED].append((report.nodeid, reason))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> object:
    report = yield
    _police(item.config, report)
    return report


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(collector: pytest.Collector) -> object:
    """A module skipped whole (importorskip, allow_module_level) counts too."""
    report = yield
    _police(collector.config, report)
    return report


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    ok = (pytest.ExitCode.OK, pytest.ExitCode.NO_TESTS_COLLECTED)
    if session.config.stash[UNEXPECTED] and session.exitstatus in ok:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    unexpected = config.stash[UNEXPECTED]
    if not unexpected:
        return
    terminalreporter.section(f"unexpected skips ({ENV_VAR}=1)", red=True)
    for nodeid, reason in unexpected:
        terminalreporter.line(f"{nodeid}: {reason}")
    terminalreporter.line(f"{len(unexpected)} case(s) were skipped for a reason not allowed in CI "
                          f"(allowed: {', '.join(p.pattern for p in ALLOWED_SKIPS)}): the session fails")
