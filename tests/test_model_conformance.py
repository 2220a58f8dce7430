"""Model conformance for every built-in backend (skipped where a backend is not installed)."""

import pytest

from jsengine_ml.conformance.model_suite import ModelConformance, reference_bundles  # noqa: F401


class TestV8Models(ModelConformance):
    backend = "v8"


class TestQuickJSModels(ModelConformance):
    backend = "quickjs"


@pytest.mark.slow
class TestDuktapeModels(ModelConformance):
    backend = "duktape"


class TestSpiderMonkeyModels(ModelConformance):
    backend = "spidermonkey"
