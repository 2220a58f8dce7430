"""The engine conformance suite (jsengine_ml.conformance) for every built-in backend.

A backend that is not installed here is skipped with the reason its check_available() gives.
EngineConformance includes the hostile-bundle cases (in-process here; isolated in test_isolation.py).
"""

from __future__ import annotations

from jsengine_ml.conformance.engine_suite import EngineConformance


class TestV8Conformance(EngineConformance):
    backend = "v8"


class TestQuickJSConformance(EngineConformance):
    backend = "quickjs"


class TestDuktapeConformance(EngineConformance):
    backend = "duktape"


class TestSpiderMonkeyConformance(EngineConformance):
    backend = "spidermonkey"
