"""TF.js graph models (``"format": "graph-model"``, the official converter's output from a TensorFlow
SavedModel; made by scripts/make_graph_models.py, goldens from TensorFlow) run on tfjs's graph
executor on every engine, with the signature's names."""

from __future__ import annotations

import numpy as np
import pytest

import jsengine_ml
from jsengine_ml.compiled.plan import UnsupportedModelError
from jsengine_ml.conformance.model_suite import reference_models_dir

BACKENDS = [i.name for i in jsengine_ml.available_backends() if i.available]


@pytest.fixture(scope="module", params=BACKENDS)
def shared_engine(request: pytest.FixtureRequest):
    with jsengine_ml.create_engine(request.param) as engine:
        yield engine


def test_one_input_graph_model(shared_engine) -> None:
    folder = reference_models_dir() / "graph_mlp"
    data = np.load(folder / "golden.npz")
    with jsengine_ml.load(folder, engine=shared_engine) as model:
        assert model.runtime == "tfjs" and model.metadata.kind == "tfjs-graph"
        assert [(a.name, a.shape, a.dtype) for a in model.metadata.inputs] == [("features", (None, 13), "float32")]
        np.testing.assert_allclose(model.predict(data["x"]), data["y"], atol=1e-5)
        np.testing.assert_allclose(model.run({"features": data["x"]})["probs"], data["y"], atol=1e-5)


def test_named_inputs_and_outputs_of_a_graph_model(shared_engine) -> None:
    folder = reference_models_dir() / "graph_multi"
    data = np.load(folder / "golden.npz")
    feeds = {k[2:]: data[k] for k in data.files if k.startswith("x_")}
    with jsengine_ml.load(folder, engine=shared_engine) as model:
        assert {a.name: a.dtype for a in model.metadata.inputs} == {"numeric": "float32", "tokens": "int32"}
        out = model.run(feeds)
        assert set(out) == {"proba", "score"}
        for name in out:
            np.testing.assert_allclose(out[name], data[f"y_{name}"], atol=1e-5)
        np.testing.assert_allclose(model.run(feeds, outputs=["score"])["score"], data["y_score"], atol=1e-5)


def test_compiled_runtime_refuses_a_graph_model_clearly() -> None:
    with pytest.raises(UnsupportedModelError, match="graph models run on tfjs"):
        jsengine_ml.load(reference_models_dir() / "graph_mlp", runtime="compiled")
