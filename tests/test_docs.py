"""The README's Python snippets run as written (each in a fresh interpreter, beside a copy of the
reference models, so that ``wine/model.json`` resolves as it would in a user's project)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from jsengine_ml.conformance.model_suite import reference_models_dir

ROOT = Path(__file__).resolve().parents[1]
FENCE = re.compile(r"^```python\n(.*?)^```", re.S | re.M)


def python_blocks(path: Path) -> list[tuple[str, str]]:
    text = path.read_text(encoding="utf-8")
    blocks = []
    for match in FENCE.finditer(text):
        line = text.count("\n", 0, match.start()) + 1
        blocks.append((f"{path.name}:{line}", match.group(1)))
    return blocks


README_BLOCKS = python_blocks(ROOT / "README.md")


def test_readme_has_python_snippets() -> None:
    assert len(README_BLOCKS) >= 2


@pytest.mark.parametrize("where,code", README_BLOCKS, ids=[w for w, _ in README_BLOCKS])
def test_readme_snippet_runs(where: str, code: str, tmp_path: Path) -> None:
    for name in ("wine", "multi_io"):
        shutil.copytree(reference_models_dir() / name, tmp_path / name)
    script = tmp_path / "snippet.py"
    script.write_text(code, encoding="utf-8")
    done = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"{where} failed:\n{done.stdout}\n{done.stderr}"
