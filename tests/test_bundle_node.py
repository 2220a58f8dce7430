"""Compiled bundles run outside jsengine-ml: in Node, with WebAssembly and without it (ES5 kernels)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from jsengine_ml.bundle import write_bundle
from jsengine_ml.conformance.model_suite import SINGLE_IO_MODELS, golden, reference_models_dir
from jsengine_ml.errors import ModelError

NODE = shutil.which("node")
pytestmark = pytest.mark.skipif(NODE is None, reason="node is not on PATH")

RUNNER = r"""
const fs = require('fs');
const [bundlePath, inputPath, withoutWasm] = process.argv.slice(2);
if (withoutWasm === '1') { delete globalThis.WebAssembly; }
const model = require(bundlePath);
const job = JSON.parse(fs.readFileSync(inputPath, 'utf8'));
const out = model.predict(new Float32Array(job.x), job.shape);
process.stdout.write(JSON.stringify({ kernels: model.info.kernels, shape: out.shape, data: Array.from(out.data) }));
"""


@pytest.fixture(scope="module")
def runner(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("node") / "run.js"
    path.write_text(RUNNER)
    return path


@pytest.mark.parametrize("without_wasm", [False, True], ids=["wasm", "es5"])
@pytest.mark.parametrize("name", SINGLE_IO_MODELS)
def test_compiled_bundle_runs_in_node(name: str, without_wasm: bool, runner: Path, tmp_path: Path) -> None:
    bundle = write_bundle(reference_models_dir() / name, tmp_path / f"{name}.js", runtime="compiled")
    assert "tf.min.js" not in bundle.read_text()[:2000]
    x, y = golden(name)
    job = tmp_path / "job.json"
    job.write_text(json.dumps({"x": x.astype(np.float64).ravel().tolist(), "shape": list(x.shape)}))
    done = subprocess.run([NODE, str(runner), str(bundle), str(job), "1" if without_wasm else "0"],  # type: ignore[list-item]
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["kernels"] == ("es5" if without_wasm else "wasm")
    out = np.asarray(result["data"], dtype=np.float32).reshape(result["shape"])
    np.testing.assert_allclose(out, y, atol=1e-5)


def test_compiled_bundle_is_a_fraction_of_a_tfjs_bundle(tmp_path: Path) -> None:
    """Both kernel sets and the weights, no tfjs: a fraction of a tfjs bundle's size (the bench reports bytes)."""
    compiled = write_bundle(reference_models_dir() / "wine", tmp_path / "c.js", runtime="compiled")
    try:
        tfjs = write_bundle(reference_models_dir() / "wine", tmp_path / "t.js", runtime="tfjs")
    except ModelError as exc:  # tfjs not installed
        pytest.skip(str(exc))
    assert compiled.stat().st_size < tfjs.stat().st_size / 4
