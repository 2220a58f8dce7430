"""Model conformance: every reference model, from its artifact and from a generated bundle, must
predict within 1e-5 (max abs) of the Keras outputs committed as golden files.

Inherit it like the engine suite::

    class TestMyEngineModels(ModelConformance):
        backend = "myengine"
"""

from __future__ import annotations

import json
from importlib import resources as importlib_resources
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest

from .._types import Array
from ..backends import get_backend
from ..errors import BackendUnavailableError, ModelError

TOLERANCE = 1e-5


def reference_models_dir() -> Path:
    return Path(str(importlib_resources.files("jsengine_ml").joinpath("reference_models")))


def _is_layers_model(folder: Path) -> bool:
    model_json = folder / "model.json"
    return (folder / "golden.npz").is_file() and model_json.is_file() and json.loads(
        model_json.read_text(encoding="utf-8")).get("format", "layers-model") == "layers-model"


#: The TF.js Layers reference models (one folder each, with Keras goldens).
REFERENCE_MODELS = sorted(p.name for p in reference_models_dir().iterdir() if _is_layers_model(p))
#: Those with one input and one output (bundles and ``predict()`` take those).
SINGLE_IO_MODELS = [n for n in REFERENCE_MODELS if "x" in np.load(reference_models_dir() / n / "golden.npz")]


def golden(name: str) -> tuple[Array, Array]:
    """(x, y) of a one-input, one-output reference model, rows flattened."""
    data = np.load(reference_models_dir() / name / "golden.npz")
    x, y = data["x"], data["y"]
    return x.reshape(len(x), -1), y.reshape(len(y), -1)


def golden_named(name: str) -> tuple[dict[str, Array], dict[str, Array]]:
    """(inputs, outputs) by name of a reference model with several inputs or outputs (``x_<name>``, ``y_<name>``)."""
    data = np.load(reference_models_dir() / name / "golden.npz")
    return ({k[2:]: data[k] for k in data.files if k.startswith("x_")},
            {k[2:]: data[k] for k in data.files if k.startswith("y_")})


@pytest.fixture(scope="session")
def reference_bundles(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, str], Path]:
    """One generated bundle per reference model and bundle runtime (written once per test session)."""
    from ..bundle import write_bundle

    out = tmp_path_factory.mktemp("bundles")
    bundles = {}
    for name in SINGLE_IO_MODELS:
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
        with model:
            if name in SINGLE_IO_MODELS:
                x, y = golden(name)
                out = model.predict(x)
                assert out.shape == y.shape and out.dtype == np.float32
                error = float(np.abs(out - y).max())
            else:
                feeds, expected = golden_named(name)
                outs = model.run(feeds)
                assert list(outs) == list(expected), (list(outs), list(expected))
                error = max(float(np.abs(outs[k] - v).max()) for k, v in expected.items())
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
    @pytest.mark.parametrize("name", SINGLE_IO_MODELS)
    def test_reference_model_bundle_matches_keras(
        self, backend_name: str, name: str, runtime: str, reference_bundles: dict[tuple[str, str], Path]
    ) -> None:
        from ..model import load

        if (name, runtime) not in reference_bundles:
            pytest.skip("tfjs is not installed (jsengine-ml install-js): no tfjs bundles")
        self._check(load(reference_bundles[(name, runtime)], backend=backend_name), name)
