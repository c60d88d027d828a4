#!/usr/bin/env bash
# Creates ./.venv (if needed) and installs pe_dense with the given extras, e.g.
#   bash tools/setup_env.sh dev,train
# torch/torchvision are pinned to the project's tested pair; PE_DENSE_VENV overrides the folder.
set -euo pipefail
cd "$(dirname "$0")/.."
venv="${PE_DENSE_VENV:-.venv}"
extras="${1:-}"
python="$(command -v python3.11 || command -v python3)"
if [ ! -x "$venv/bin/python" ]; then
    echo "creating $venv with $python"
    "$python" -m venv "$venv"
fi
"$venv/bin/python" -m pip install -q --upgrade pip
"$venv/bin/python" -m pip install -q "torch==2.14.1" "torchvision==0.29.1"
"$venv/bin/python" -m pip install -q -e ".${extras:+[$extras]}"
