#!/usr/bin/env bash
# Regenerate tests/fixtures/converter/ with the official TF.js converter on Keras 2 models.
#
#   scripts/make_converter_fixtures.sh [--only NAME ...]
#
# Environment:
#   CONVVENV=/work/convvenv   venv for the pinned toolchain (created if missing; ~3 GB). Never the
#                             project's dev venv: tensorflow 2.19 + tf_keras would clash with keras 3.
#   SKIP_INSTALL=1            do not (re)run pip install -r scripts/converter-requirements.txt
#   SKIP_VERIFY=1             do not run the node/tfjs check afterwards
#   SKIP_GRAPH_MODELS=1       do not (re)make the graph models (see below)
#
# After the fixtures are written, tests/fixtures/converter/verify_tfjs.js loads each one with the
# project's tfjs 4.22 (jsengine_ml/js/node_modules) when node and that install exist, and writes
# tests/fixtures/converter/tfjs_verification.json.
#
# A full run (no --only) then also runs scripts/make_graph_models.py in the same venv: TF.js graph
# models (tf_saved_model -> tfjs_graph_model) in jsengine_ml/reference_models/graph_mlp and graph_multi,
# checked in node unless SKIP_VERIFY=1 or node/tfjs are missing.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CONVVENV="${CONVVENV:-/work/convvenv}"
PY="${PYTHON:-python3}"

if [ ! -x "$CONVVENV/bin/python" ]; then
  echo "creating venv $CONVVENV"
  "$PY" -m venv "$CONVVENV"
fi
if [ "${SKIP_INSTALL:-0}" != "1" ]; then
  "$CONVVENV/bin/python" -m pip install --quiet --upgrade pip
  "$CONVVENV/bin/python" -m pip install --quiet -r "$ROOT/scripts/converter-requirements.txt"
fi

export TF_USE_LEGACY_KERAS=1 TF_CPP_MIN_LOG_LEVEL=3 PYTHONHASHSEED=0
"$CONVVENV/bin/python" "$ROOT/scripts/make_converter_fixtures.py" "$@"

FIX="$ROOT/tests/fixtures/converter"
if [ "${SKIP_VERIFY:-0}" != "1" ]; then
  if command -v node >/dev/null && [ -d "$ROOT/jsengine_ml/js/node_modules/@tensorflow/tfjs" ]; then
    if [ "$#" -eq 0 ]; then
      node "$FIX/verify_tfjs.js" --json "$FIX/tfjs_verification.json" 2>/dev/null
    else  # partial run: print only, keep the full verification file as it is
      node "$FIX/verify_tfjs.js" 2>/dev/null
    fi
  else
    echo "node or jsengine_ml/js/node_modules/@tensorflow/tfjs missing: tfjs verification skipped"
  fi
fi

if [ "$#" -eq 0 ] && [ "${SKIP_GRAPH_MODELS:-0}" != "1" ]; then
  GRAPH_ARGS=()
  if [ "${SKIP_VERIFY:-0}" = "1" ] || ! command -v node >/dev/null \
      || [ ! -d "$ROOT/jsengine_ml/js/node_modules/@tensorflow/tfjs" ]; then
    GRAPH_ARGS+=(--no-verify)
  fi
  "$CONVVENV/bin/python" "$ROOT/scripts/make_graph_models.py" ${GRAPH_ARGS[@]+"${GRAPH_ARGS[@]}"}
fi
