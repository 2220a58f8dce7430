"""Model conformance: every reference model, from its artifact and from a generated bundle, must
predict within 1e-5 (max abs) of the Keras outputs committed as golden files.

Inherit it like the engine suite::

    class TestMyEngineModels(ModelConformance):
        backend = "myengine"
"""

from __future__ import annotations

from importlib import resources as importlib_resources
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest

from ..backends import get_backend
from ..errors import BackendUnavailableError, ModelError

TOLERANCE = 1e-5


def reference_models_dir() -> Path:
    return Path(str(importlib_resources.files("jsengine_ml").joinpath("reference_models")))


REFERENCE_MODELS = sorted(p.name for p in reference_models_dir().iterdir() if (p / "golden.npz").is_file())


def golden(name: str) -> tuple[np.ndarray, np.ndarray]:
    data = np.load(reference_models_dir() / name / "golden.npz")
    x, y = data["x"], data["y"]
    return x.reshape(len(x), -1), y.reshape(len(y), -1)


@pytest.fixture(scope="session")
def reference_bundles(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, str], Path]:
    """One generated bundle per reference model and bundle runtime (written once per test session)."""
    from ..bundle import write_bundle

    out = tmp_path_factory.mktemp("bundles")
    bundles = {}
    for name in REFERENCE_MODELS:
        for runtime in BUNDLE_RUNTIMES:
            try:
                bundles[(name, runtime)] = write_bundle(
                    reference_models_dir() / name, out / f"{name}.{runtime}.bundle.js", runtime=runtime)
            except ModelError as exc:  # tfjs not installed: the compiled bundles still run
                if "not installed" not in str(exc):
                    raise
    return bundles


RUNTIMES = ("compiled", "tfjs")
BUNDLE_RUNTIMES = ("compiled", "tfjs")


class ModelConformance:
    """Every reference model on one backend, from artifacts (each runtime) and from bundles."""

    backend: ClassVar[str | None] = None

    @pytest.fixture
    def backend_name(self) -> str:
        try:
            return get_backend(self.backend).name
        except BackendUnavailableError as exc:
            pytest.skip(str(exc))

    def _check(self, model: Any, name: str) -> float:
        x, y = golden(name)
        with model:
            out = model.predict(x)
            assert out.shape == y.shape and out.dtype == np.float32
            error = float(np.abs(out - y).max())
        assert error <= TOLERANCE, f"{name}: max abs error {error:.3g} > {TOLERANCE}"
        return error

    @pytest.mark.parametrize("runtime", RUNTIMES)
    @pytest.mark.parametrize("name", REFERENCE_MODELS)
    def test_reference_model_artifact_matches_keras(self, backend_name: str, name: str, runtime: str) -> None:
        from ..model import load

        try:
            model = load(reference_models_dir() / name, backend=backend_name, runtime=runtime)
        except ModelError as exc:
            if runtime == "tfjs" and "not installed" in str(exc):
                pytest.skip(str(exc))
            raise
        assert model.metadata.extra["runtime"] == runtime
        self._check(model, name)

    @pytest.mark.parametrize("name", REFERENCE_MODELS)
    def test_reference_model_auto_runtime_is_compiled(self, backend_name: str, name: str) -> None:
        """runtime="auto" (the default) compiles every reference model: no tfjs needed."""
        from ..model import load

        model = load(reference_models_dir() / name, backend=backend_name)
        assert model.runtime == "compiled" and "runtime_reason" not in model.metadata.extra
        self._check(model, name)

    @pytest.mark.parametrize("runtime", BUNDLE_RUNTIMES)
    @pytest.mark.parametrize("name", REFERENCE_MODELS)
    def test_reference_model_bundle_matches_keras(
        self, backend_name: str, name: str, runtime: str, reference_bundles: dict[tuple[str, str], Path]
    ) -> None:
        from ..model import load

        if (name, runtime) not in reference_bundles:
            pytest.skip("tfjs is not installed (jsengine-ml install-js): no tfjs bundles")
        self._check(load(reference_bundles[(name, runtime)], backend=backend_name), name)
