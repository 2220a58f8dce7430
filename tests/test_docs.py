"""The README's and docs' Python snippets and ``jsengine-ml`` command lines run as written.

Each Python block runs in a fresh interpreter in a folder holding copies of the reference models
(so ``wine/model.json`` resolves as in a user's project). A block preceded by
``<!-- docs-test: continues -->`` runs after the blocks before it in the same file (one script);
``<!-- docs-test: not run (reason) -->`` marks a block that cannot run here, and says why. Command
lines are the ``jsengine-ml ...`` lines of ``bash`` blocks, run in order in one such folder.
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from jsengine_ml.conformance.model_suite import golden, reference_models_dir

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
BLOCK = re.compile(r"(?:^<!-- docs-test: (?P<marker>[^\n]*?) -->\n)?^```(?P<lang>\w*)\n(?P<body>.*?)^```", re.S | re.M)
#: Command lines run elsewhere (slow or networked), and where.
RUN_ELSEWHERE = {
    "jsengine-ml bench --quick": "scripts/test.sh runs it as its own step (minutes)",
    "jsengine-ml install-js": "needs the npm registry; scripts/test.sh installs the same lockfile with npm ci",
}


def _blocks(path: Path) -> list[tuple[int, str, str, str]]:
    """(line, language, marker, body) of each fenced block."""
    text = path.read_text(encoding="utf-8")
    return [(text.count("\n", 0, m.start("body")), m["lang"], m["marker"] or "", m["body"])
            for m in BLOCK.finditer(text)]


def python_scripts() -> list[tuple[str, str]]:
    """(where, code): each Python block, with the blocks it continues prepended."""
    scripts: list[tuple[str, str]] = []
    for path in DOCS:
        chain = ""
        for line, lang, marker, body in _blocks(path):
            if lang != "python":
                continue
            if marker.startswith("not run"):
                assert re.fullmatch(r"not run \(.+\)", marker), f"{path.name}:{line}: say why a block is not run"
                continue
            if marker == "continues":
                chain += "\n" + body
                scripts[-1] = (f"{path.name}:{line}", chain)
                continue
            assert not marker, f"{path.name}:{line}: unknown docs-test marker {marker!r}"
            chain = body
            scripts.append((f"{path.name}:{line}", chain))
    return scripts


def command_lines() -> list[str]:
    lines = []
    for path in DOCS:
        for _, lang, _, body in _blocks(path):
            if lang == "bash":
                for line in body.splitlines():
                    for part in line.split("#", 1)[0].split("&&"):
                        if part.strip().startswith("jsengine-ml "):
                            lines.append(part.strip())
    return lines


SCRIPTS = python_scripts()
COMMANDS = command_lines()


@pytest.fixture()
def workdir(tmp_path: Path) -> Path:
    for name in ("wine", "multi_io"):
        shutil.copytree(reference_models_dir() / name, tmp_path / name)
    x, _ = golden("wine")
    np.savetxt(tmp_path / "rows.csv", x[:5], delimiter=",", header=",".join(f"f{i}" for i in range(13)), comments="")
    return tmp_path


def test_docs_have_snippets_and_commands() -> None:
    assert len(SCRIPTS) >= 5 and len(COMMANDS) >= 8
    assert set(RUN_ELSEWHERE) <= set(COMMANDS), "a command listed as run elsewhere is gone from the docs"


@pytest.mark.parametrize("where,code", SCRIPTS, ids=[w for w, _ in SCRIPTS])
def test_python_snippet_runs(where: str, code: str, workdir: Path) -> None:
    if "pyflink" in code:
        pytest.importorskip("pyflink", reason="PyFlink not installed (pip install 'jsengine-ml[flink]')")
    script = workdir / "snippet.py"
    script.write_text(code, encoding="utf-8")
    done = subprocess.run([sys.executable, str(script)], cwd=workdir, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"{where} failed:\n{done.stdout}\n{done.stderr[-5000:]}"


def test_command_lines_run_in_order(workdir: Path) -> None:
    exe = shutil.which("jsengine-ml", path=str(Path(sys.executable).parent)) or shutil.which("jsengine-ml")
    assert exe, "the jsengine-ml console script is not installed (pip install -e .)"
    for line in COMMANDS:
        if line in RUN_ELSEWHERE:
            continue
        done = subprocess.run([exe, *shlex.split(line)[1:]], cwd=workdir, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, f"`{line}` failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        assert done.stdout.strip(), f"`{line}` printed nothing"
