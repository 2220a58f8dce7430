"""Conformance kit for jsengine-ml backends.

``EngineConformance`` is the pytest test class a backend's test file inherits (set ``backend``): the
union of one mixin per concern (``jsengine_ml.conformance.engine``), the hostile-bundle cases
included; ``HostileConformance`` runs the hostile cases alone, in both modes;
``run_conformance`` runs it for installed backends and prints a pass/fail table; ``bundles/`` holds
the webpack fixtures (see ``bundles/manifest.json``).
"""

from __future__ import annotations

import sys
from typing import Any

if "pytest" in sys.modules:  # running under pytest: show assertion details inside the suite
    sys.modules["pytest"].register_assert_rewrite(
        "jsengine_ml.conformance.engine_suite", "jsengine_ml.conformance.engine"
    )

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
