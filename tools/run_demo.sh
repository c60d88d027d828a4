#!/usr/bin/env bash
# The README's main-job command: sets up .venv with the demo extra, then runs the live demo
# headless on its built-in clip (PE-Spatial-T features, PCA colours) and writes outputs/demo.mp4.
# Extra arguments go to `pe-dense demo` (e.g. --mode track, --source video.mp4, --max-frames 8).
set -euo pipefail
cd "$(dirname "$0")/.."
venv="${PE_DENSE_VENV:-.venv}"
bash tools/setup_env.sh demo
echo "running: pe-dense demo --headless --output outputs/demo.mp4 --resolution 384 $*"
"$venv/bin/pe-dense" demo --headless --output outputs/demo.mp4 --resolution 384 "$@"
