"""The hostile-bundle cases (``jsengine_ml.conformance.hostile_suite``) as a mixin of the engine suite.

Each case runs once, in the mode of the engine class under test: in-process for a backend's own
class, isolated for an isolated class (``Capabilities.isolated``). ``HostileConformance`` still runs
both modes from a backend name on its own.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from ...engine import Capabilities
from ..hostile_suite import CASES, CASES_BY_NAME, run_hostile_case
from .fixtures import EngineFixtures, require

#: The capability each in-process limit a case needs is declared by.
NEEDS_CAPABILITY = {"time": "time_limit", "memory": "memory_limit_scope", "memory-all": "memory_limit_scope"}


class HostileTests(EngineFixtures):
    """Bundles that hang, starve, crash or try to escape: a clear error in time, and the process lives."""

    #: The time limit the cases run under (seconds).
    hostile_time_limit: float = 1.0
    hostile_memory_limit: int = 256 << 20

    @pytest.mark.parametrize("case", [c.name for c in CASES])
    def test_hostile_bundle(self, case: str, caps: Capabilities, tmp_path: Path) -> None:
        mode = "isolated" if caps.isolated else "in-process"
        outcome = run_hostile_case(caps.backend, case, mode, time_limit=self.hostile_time_limit,
                                   memory_limit=self.hostile_memory_limit, workdir=tmp_path)
        if outcome.error == "skip":
            needs = CASES_BY_NAME[case].needs or ""
            field = NEEDS_CAPABILITY[needs]
            require(caps, field, False, outcome.message)
        assert outcome.passed, outcome.describe()
