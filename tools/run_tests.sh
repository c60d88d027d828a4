#!/usr/bin/env bash
# The README's test command: sets up .venv with the dev extras, then runs the default test suite
# (slow tests excluded; run them with: .venv/bin/python -m pytest -m slow).
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/setup_env.sh dev
exec .venv/bin/python -m pytest -q "$@"
