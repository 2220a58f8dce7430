"""The engine conformance suite (jsengine_ml.conformance) for every built-in backend.

A backend that is not installed here is skipped with the reason its check_available() gives.
"""

from __future__ import annotations

from jsengine_ml.conformance.engine_suite import EngineConformance
from jsengine_ml.conformance.hostile_suite import HostileConformance


class TestV8Conformance(EngineConformance):
    backend = "v8"


class TestQuickJSConformance(EngineConformance):
    backend = "quickjs"


class TestDuktapeConformance(EngineConformance):
    backend = "duktape"


class TestV8Hostile(HostileConformance):
    backend = "v8"


class TestQuickJSHostile(HostileConformance):
    backend = "quickjs"


class TestDuktapeHostile(HostileConformance):
    backend = "duktape"


class TestSpiderMonkeyConformance(EngineConformance):
    backend = "spidermonkey"


class TestSpiderMonkeyHostile(HostileConformance):
    backend = "spidermonkey"
