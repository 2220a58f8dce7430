"""The engine conformance suite: one pytest class every backend (ours or a third party's) inherits.

Usage, in the backend's own test file::

    from jsengine_ml.conformance import EngineConformance

    class TestMyEngine(EngineConformance):
        backend = "myengine"            # registry name (entry point or register_backend)

or, without registering the backend, override the ``engine_class`` fixture::

    class TestMyEngine(EngineConformance):
        @pytest.fixture
        def engine_class(self):
            return MyEngine

The cases live in mixins, one per concern (``jsengine_ml.conformance.engine``), over one fixtures
base. What a backend cannot do comes from its ``Capabilities`` (a case that needs it skips, naming
the capability); the few bugs of its binding are its ``known_bugs`` (exact case name, the exception
raised, the reason), run as strict xfails. Nothing engine-specific lives in the suite. Every
JavaScript snippet is ES5 unless a case is about newer syntax: the suite must run on Duktape.
"""

from __future__ import annotations

import inspect

from ..engine import Engine
from .engine.arrays import ArrayTests
from .engine.bundles import BundleTests
from .engine.capabilities import CapabilityTests
from .engine.fetch import FetchTests
from .engine.fixtures import EngineFixtures
from .engine.hostile import HostileTests
from .engine.lifecycle import LifecycleTests
from .engine.limits import LimitTests
from .engine.shims import ShimTests
from .engine.threads import ThreadTests
from .engine.timers import TimerAndPromiseTests
from .engine.values import ValuesAndErrorsTests

__all__ = [
    "ArrayTests",
    "BundleTests",
    "CapabilityTests",
    "EngineConformance",
    "EngineFixtures",
    "FetchTests",
    "HostileTests",
    "LifecycleTests",
    "LimitTests",
    "ShimTests",
    "ThreadTests",
    "TimerAndPromiseTests",
    "ValuesAndErrorsTests",
]


class EngineConformance(
    ValuesAndErrorsTests,
    ArrayTests,
    ShimTests,
    TimerAndPromiseTests,
    FetchTests,
    BundleTests,
    LimitTests,
    ThreadTests,
    LifecycleTests,
    CapabilityTests,
    HostileTests,
):
    """Behaviour every jsengine-ml backend must show. Subclass it and set ``backend``."""

    def test_known_bugs_name_cases_of_this_suite(self, _available_class: type[Engine]) -> None:
        """Every bug the backend declares names a case that exists (a renamed case leaves none stale)."""
        cases = {name for name, _ in inspect.getmembers(type(self), inspect.isfunction) if name.startswith("test_")}
        stale = [bug.test for bug in _available_class.known_bugs if bug.test not in cases]
        assert not stale, f"{_available_class.__name__}.known_bugs names no case of {type(self).__name__}: {stale}"
        for bug in _available_class.known_bugs:
            assert isinstance(bug.raises, type) and issubclass(bug.raises, BaseException), bug
            assert bug.reason.strip(), bug
