"""The soak benchmark in its small mode: no wrong prediction, no engine, thread or process leaked."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

SOAK = Path(__file__).resolve().parent.parent / "benchmarks" / "soak.py"


@pytest.mark.slow
def test_soak_small(tmp_path: Path) -> None:
    out = tmp_path / "soak.json"
    proc = subprocess.run([sys.executable, str(SOAK), "--small", "--json", str(out)], capture_output=True, text=True,
                          timeout=900)
    print(proc.stdout)
    assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
    rows = json.loads(out.read_text())
    assert {(r["kind"], r["isolation"]) for r in rows} >= {("predictions", "none"), ("predictions", "process"),
                                                           ("swaps", "none"), ("swaps", "process")}
    assert all(r["wrong"] == 0 for r in rows)
    assert all(not any(r["leaked"].values()) for r in rows if r["kind"] == "swaps")
