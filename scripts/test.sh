#!/usr/bin/env bash
# Install everything the tests need (Java for PyFlink, the Python test extras, the pinned npm
# packages) and run them: lint, type checking, the conformance table, a quick benchmark, then the
# whole pytest suite (slow and Flink cases included), where a skip other than a backend's declared
# capability gap fails the run (tests/conftest.py). Run from the repository root.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python}

if ! command -v java >/dev/null 2>&1; then
  echo "== installing Java (PyFlink needs a JVM)"
  if command -v apt-get >/dev/null 2>&1; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openjdk-17-jre-headless >/dev/null
  else
    echo "no java and no apt-get: install a Java 11+ runtime for the Flink tests" >&2
  fi
fi
# The pip that `python3 -m venv` ships (23.2 on Python 3.11) backtracks for more than half an hour on
# the test extras (keras + jax + onnx + apache-flink); a current pip resolves them in minutes.
echo "== pip install --upgrade pip (the venv's own pip backtracks for too long on these extras)"
"$PY" -m pip install -q --upgrade "pip>=25.1"
echo "== pip install -e .[test]"
"$PY" -m pip install -q -e ".[test]"
echo "== npm ci (tfjs 4.22 + webpack, pinned by jsengine_ml/js/package-lock.json)"
(cd jsengine_ml/js && npm ci --no-audit --no-fund --loglevel=error)
echo "== ruff"
"$PY" -m ruff check jsengine_ml tests benchmarks scripts examples
echo "== mypy --strict (configuration in pyproject.toml)"
"$PY" -m mypy jsengine_ml
echo "== conformance table"
"$PY" -m jsengine_ml.cli conformance
echo "== quick benchmark"
"$PY" -m jsengine_ml.cli bench --quick --out "${TMPDIR:-/tmp}/jsengine-ml-bench-quick"
echo "== pytest (slow and Flink cases included; any skip but a capability gap fails)"
JSENGINE_ML_NO_UNEXPECTED_SKIPS=1 "$PY" -m pytest -q -ra
