"""Isolation: engines in supervised worker processes (jsengine_ml.isolation)."""

from __future__ import annotations

import pytest

from jsengine_ml.backends import get_backend
from jsengine_ml.conformance.engine_suite import EngineConformance
from jsengine_ml.engine import Engine
from jsengine_ml.errors import BackendUnavailableError
from jsengine_ml.isolation import isolated_class


class _Isolated(EngineConformance):
    """The whole engine suite on an isolated engine: same API, same results as in-process."""

    @pytest.fixture
    def engine_class(self) -> type[Engine]:
        try:
            return isolated_class(get_backend(self.backend))
        except BackendUnavailableError as exc:
            pytest.skip(str(exc))


class TestIsolatedQuickJSConformance(_Isolated):
    backend = "quickjs"


class TestIsolatedV8Conformance(_Isolated):
    backend = "v8"


class TestIsolatedDuktapeConformance(_Isolated):
    backend = "duktape"
