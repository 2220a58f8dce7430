"""A webpack app that seals tfjs inside it (as most third-party model bundles do) loads quietly:
tfjs's expected start-up chatter in a browser-less engine (no WebGL) goes to DEBUG, not WARNING."""

from __future__ import annotations

import logging
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

import jsengine_ml

ROOT = Path(__file__).resolve().parents[1]
NODE_MODULES = ROOT / "jsengine_ml" / "js" / "node_modules"
NODE = shutil.which("node")

APP = """
import * as tf from '@tensorflow/tfjs';
export function predict(rows) {
  return tf.tidy(() => tf.tensor2d(rows).mul(2).sum(1, true).arraySync());
}
"""

BUILD = """
const path = require('path');
const webpack = require(path.join(process.argv[2], 'webpack'));
webpack({
  mode: 'production', target: ['web', 'es2017'], entry: process.argv[3],
  resolve: { modules: [process.argv[2]] },
  output: { path: process.argv[4], filename: 'app.js', library: { name: 'App', type: 'var' } },
  performance: { hints: false },
}, (err, stats) => {
  if (err || stats.hasErrors()) { console.error(err || stats.toString('errors-only')); process.exit(1); }
});
"""


@pytest.fixture(scope="module")
def sealed_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if NODE is None or not (NODE_MODULES / "webpack").is_dir():
        pytest.skip("node and the pinned webpack (npm ci in jsengine_ml/js) are needed to build the app")
    work = tmp_path_factory.mktemp("sealed")
    (work / "app.mjs").write_text(APP)
    (work / "build.js").write_text(BUILD)
    done = subprocess.run([NODE, str(work / "build.js"), str(NODE_MODULES), str(work / "app.mjs"), str(work / "out")],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    return work / "out" / "app.js"


@pytest.mark.slow
@pytest.mark.parametrize("backend", [i.name for i in jsengine_ml.available_backends() if i.available and
                                     i.capabilities and i.capabilities.es_version >= 2017])
def test_sealed_tfjs_bundle_loads_without_warnings(backend: str, sealed_bundle: Path,
                                                   caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG, logger="jsengine_ml.console"):
        with jsengine_ml.load(sealed_bundle, backend=backend, n_features=3) as model:
            out = model.predict(np.array([[1, 2, 3], [4, 5, 6]], np.float32))
    np.testing.assert_allclose(out, [[12], [30]])
    console = [r for r in caplog.records if r.name == "jsengine_ml.console"]
    assert not [r.getMessage() for r in console if r.levelno >= logging.WARNING]
    assert any("Initialization of backend webgl failed" in r.getMessage() for r in console), (
        "tfjs no longer tries WebGL here: the chatter filter may be obsolete")
