"""The CI skip policy of tests/conftest.py: capability skips pass, any other skip fails the session."""

from __future__ import annotations

from pathlib import Path

import pytest

CASES = """
import pytest

def test_runs():
    pass

def test_capability_gap():
    pytest.skip("capability time_limit is False: no time limit to stop the loop with")

def test_missing_module():
    pytest.importorskip("a_module_nobody_installed")
"""


@pytest.fixture
def policed(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    pytester.makeconftest(Path(__file__).with_name("conftest.py").read_text(encoding="utf-8"))
    monkeypatch.setenv("JSENGINE_ML_NO_UNEXPECTED_SKIPS", "1")
    return pytester


def test_a_skip_outside_the_allowed_list_fails_the_session(policed: pytest.Pytester) -> None:
    policed.makepyfile(test_cases=CASES)
    result = policed.runpytest("-rs")
    result.assert_outcomes(passed=1, skipped=2)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["*unexpected skips*", "*test_missing_module*a_module_nobody_installed*"])
    assert "test_capability_gap:" not in result.stdout.str()


def test_capability_skips_alone_pass(policed: pytest.Pytester) -> None:
    policed.makepyfile(test_cases=CASES.split("def test_missing_module")[0])
    result = policed.runpytest("-rs")
    result.assert_outcomes(passed=1, skipped=1)
    assert result.ret == pytest.ExitCode.OK


def test_a_module_skipped_whole_counts(policed: pytest.Pytester) -> None:
    policed.makepyfile(test_cases="import pytest\npytest.importorskip('a_module_nobody_installed')\n")
    assert policed.runpytest().ret == pytest.ExitCode.TESTS_FAILED


def test_without_the_variable_skips_are_only_reported(policed: pytest.Pytester,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("JSENGINE_ML_NO_UNEXPECTED_SKIPS")
    policed.makepyfile(test_cases=CASES)
    assert policed.runpytest().ret == pytest.ExitCode.OK
