"""The committed webpack fixtures (jsengine_ml/conformance/bundles) are what the build script produces.

Export discovery over these bundles runs on every backend in the conformance suite
(tests/test_conformance.py, ``test_webpack_bundle_*``).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BUNDLES = ROOT / "jsengine_ml" / "conformance" / "bundles"
BUILD_SCRIPT = ROOT / "scripts" / "build_webpack_fixtures.js"
WEBPACK = ROOT / "jsengine_ml" / "js" / "node_modules" / "webpack"
MANIFEST = json.loads((BUNDLES / "manifest.json").read_text(encoding="utf-8"))


def test_manifest_lists_every_committed_bundle():
    listed = {entry["file"] for entry in MANIFEST["bundles"] + MANIFEST["negative"]}
    assert listed == {path.name for path in BUNDLES.glob("*.js")}
    assert all(entry["expected_path"] for entry in MANIFEST["bundles"])
    assert all(entry["expected_path"] is None for entry in MANIFEST["negative"])


@pytest.mark.skipif(
    shutil.which("node") is None or not WEBPACK.is_dir() or not BUILD_SCRIPT.is_file(),
    reason="needs node, scripts/build_webpack_fixtures.js and jsengine_ml/js/node_modules/webpack "
    "(npm ci in jsengine_ml/js)",
)
def test_rebuild_matches_committed_bundles(tmp_path):
    subprocess.run(["node", str(BUILD_SCRIPT), str(tmp_path)], check=True, capture_output=True, timeout=300)
    rebuilt = json.loads((tmp_path / "manifest.json").read_text(encoding="utf-8"))
    assert rebuilt == MANIFEST
    for entry in MANIFEST["bundles"] + MANIFEST["negative"]:
        assert (tmp_path / entry["file"]).read_bytes() == (BUNDLES / entry["file"]).read_bytes(), (
            f"{entry['file']} differs from a fresh build; rerun node scripts/build_webpack_fixtures.js"
        )
