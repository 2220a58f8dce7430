"""Conformance kit for jsengine-ml backends.

``EngineConformance`` and ``HostileConformance`` (the hostile-bundle cases) are pytest test classes
a backend's test file inherits (set ``backend``);
``run_conformance`` runs it for installed backends and prints a pass/fail table; ``bundles/`` holds
the webpack fixtures (see ``bundles/manifest.json``).
"""

from __future__ import annotations

import sys
from typing import Any

if "pytest" in sys.modules:  # running under pytest: show assertion details inside the suite
    sys.modules["pytest"].register_assert_rewrite("jsengine_ml.conformance.engine_suite")

__all__ = ["EngineConformance", "HostileConformance", "run_conformance"]


def __getattr__(name: str) -> Any:
    # Lazy: importing jsengine_ml.conformance must not require pytest (the suite needs it).
    if name == "EngineConformance":
        from .engine_suite import EngineConformance

        return EngineConformance
    if name == "HostileConformance":
        from .hostile_suite import HostileConformance

        return HostileConformance
    if name == "run_conformance":
        from .runner import run_conformance

        return run_conformance
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
