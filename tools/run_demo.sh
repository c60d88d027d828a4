#!/usr/bin/env bash
# The README's main-job command: sets up .venv, lists the PE models and extracts PE-Spatial
# features from the built-in sample image, writing a PCA picture to outputs/features/.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/setup_env.sh
.venv/bin/pe-dense info --filter Spatial
.venv/bin/pe-dense features --out outputs/features "$@"
