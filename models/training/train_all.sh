#!/usr/bin/env bash
# Retrains the three shipped models from the committed data and regenerates their metrics and model-card numbers.
#
#   models/training/train_all.sh          (from anywhere; takes about 6 minutes on 2 CPU cores)
#
# Needs Debian's Python packages (no pip, no network): apt-get install python3-torch python3-onnx python3-numpy
# (python3-sklearn is optional: only for the gradient-boosting reference numbers in ai4i-fault/training-report.json).
# Uses /usr/bin/python3 on purpose: a pyenv/venv python3 earlier on PATH does not see Debian's packages.
# Seeds are fixed and torch runs single-threaded: a rerun on the same software and CPU gives the same metrics (and in
# practice the same file); on another CPU the files can differ in the last float bits (same metrics).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
models="$(dirname "$here")"
repo="$(dirname "$models")"
PY="${PYTHON:-/usr/bin/python3}"

"$PY" -c 'import torch, onnx, numpy' 2>/dev/null || {
  echo "train_all.sh: $PY cannot import torch/onnx/numpy; install python3-torch python3-onnx python3-numpy (Debian)" >&2
  exit 1
}

run() { nice -n 15 "$PY" "$@"; }  # niced: on a shared machine training yields to tests
run "$here/train_ai4i.py"
run "$here/train_cmapss.py"
run "$here/train_steel.py"
run "$here/render_steel_card.py"

# The model cards' numbers come from the ONNX files via onnxruntime-node, not from Python.
if [ -d "$repo/node_modules/onnxruntime-node" ]; then
  # evaluate.mjs reads the ONNX metadata with the gateway's own reader, compiled into dist/.
  (cd "$repo" && npm run build --silent && node models/evaluate.mjs --write)
else
  echo "train_all.sh: node_modules/onnxruntime-node missing: run 'npm ci', then 'npm run build && node models/evaluate.mjs --write'" >&2
  exit 1
fi
