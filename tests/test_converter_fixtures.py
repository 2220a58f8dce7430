"""Models made by another tool: Keras 2 (tf_keras 2.19) models converted by the official
``tensorflowjs_converter`` 4.22 (``tests/fixtures/converter``, made by
``scripts/make_converter_fixtures.sh``; goldens computed by tf_keras). Keras 2 configs with
``batch_input_shape``, several shards, ``--quantize_float16/uint8/uint16``, alphabetical weight
order, and layers tfjs 4.22 itself refuses.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import jsengine_ml
from jsengine_ml.model import load
from jsengine_ml.reference import forward
from jsengine_ml.topology import read_artifact_graph

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "converter"
INDEX = json.loads((FIXTURES / "index.json").read_text())["fixtures"]
TFJS = {r["name"]: r for r in json.loads((FIXTURES / "tfjs_verification.json").read_text())["results"]}
BACKENDS = [i.name for i in jsengine_ml.available_backends() if i.available]
SINGLE = sorted(name for name, f in INDEX.items() if len(f["inputs"]) == 1 and len(f["outputs"]) == 1)


def _golden(name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """(x, y from tf_keras, y from tf_keras with the dequantized weights when quantized)."""
    data = np.load(FIXTURES / name / "golden.npz")
    dequantized = FIXTURES / name / "golden_dequantized.npz"
    y_deq = np.load(dequantized)["y"] if dequantized.is_file() else None
    return data["x"], data["y"], y_deq


def _tolerance(name: str) -> float:
    """Against tf_keras with the original float32 weights, quantization costs its own error."""
    flags = INDEX[name]["converter_flags"]
    return {"--quantize_uint8": 5e-3, "--quantize_float16": 5e-4, "--quantize_uint16": 5e-5}.get(
        flags[0] if flags else "", 1e-5)


@pytest.fixture(scope="module", params=BACKENDS)
def shared_engine(request: pytest.FixtureRequest) -> Any:
    with jsengine_ml.create_engine(request.param) as engine:
        yield engine


@pytest.mark.parametrize("name", SINGLE)
def test_compiled_runtime_runs_the_converters_models(name: str, shared_engine: Any) -> None:
    x, y, y_deq = _golden(name)
    with load(FIXTURES / name, engine=shared_engine, runtime="compiled") as model:
        out = model.predict(x)
    np.testing.assert_allclose(out, y.reshape(len(y), -1), atol=_tolerance(name), rtol=1e-4)
    if y_deq is not None:  # dequantized exactly as tfjs does it
        np.testing.assert_allclose(out, y_deq.reshape(len(y), -1), atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("name", sorted(INDEX))
def test_numpy_reference_runs_the_converters_models(name: str) -> None:
    data = np.load(FIXTURES / name / "golden.npz")
    fixture = INDEX[name]
    graph = read_artifact_graph(FIXTURES / name / "model.json")
    outs = forward(graph, [data[i["key"]] for i in fixture["inputs"]], np.float64)
    expected = np.load(FIXTURES / name / "golden_dequantized.npz") if fixture["quantized"] else data
    for out, spec in zip(outs, fixture["outputs"], strict=True):
        np.testing.assert_allclose(out.reshape(len(out), -1), expected[spec["key"]].reshape(len(out), -1),
                                   atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("name", SINGLE)
def test_tfjs_runtime_where_tfjs_can(name: str) -> None:
    """tfjs 4.22 runs what it can (the verification table in the fixtures' README); the rest is refused
    with tfjs's own message, and runtime='auto' compiles those instead."""
    x, y, _ = _golden(name)
    verdict = TFJS[name]
    # tfjs refuses the converter's SeparableConv2D config in node; jsengine-ml normalizes it first.
    runnable = verdict["matches"] or "are invalid for SeparableConv2D" in (verdict.get("error") or "")
    try:
        with load(FIXTURES / name, backend="quickjs", runtime="tfjs") as model:
            out = model.predict(x)
    except jsengine_ml.JSEngineMLError as exc:
        assert not runnable, f"{name}: tfjs failed here but passed in node: {exc}"
        with load(FIXTURES / name, backend="quickjs") as model:
            assert model.runtime == "compiled"
        return
    assert runnable, f"{name}: tfjs ran it here but not in node"
    np.testing.assert_allclose(out, y.reshape(len(y), -1), atol=_tolerance(name), rtol=1e-4)


def test_named_inputs_and_outputs_of_a_two_input_two_output_model(shared_engine: Any) -> None:
    """functional_multi: a float vector and a token sequence in, class probabilities and a score out."""
    fixture = INDEX["functional_multi"]
    data = np.load(FIXTURES / "functional_multi" / "golden.npz")
    feeds = {i["name"]: data[i["key"]] for i in fixture["inputs"]}
    for runtime in ("compiled", "tfjs"):
        with load(FIXTURES / "functional_multi", engine=shared_engine, runtime=runtime) as model:
            assert [a.name for a in model.metadata.inputs] == [i["name"] for i in fixture["inputs"]]
            assert [a.dtype for a in model.metadata.inputs] == ["float32", "int32"]
            out = model.run(feeds)
            assert list(out) == [o["name"] for o in fixture["outputs"]]
            for spec in fixture["outputs"]:
                np.testing.assert_allclose(out[spec["name"]], data[spec["key"]], atol=1e-5)
            only = model.run(feeds, outputs=[fixture["outputs"][1]["name"]])
            assert list(only) == [fixture["outputs"][1]["name"]]
