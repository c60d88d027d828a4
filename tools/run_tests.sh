#!/usr/bin/env bash
# The README's test command: sets up .venv with the dev extras, then runs the default test suite
# (slow tests excluded; run them with: .venv/bin/python -m pytest -m slow).
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/setup_env.sh dev
# sam2 (the SAM 2 distillation teacher) is a source package: pure Python without its CUDA op.
if ! .venv/bin/python -c "import sam2" 2>/dev/null; then
    SAM2_BUILD_CUDA=0 .venv/bin/python -m pip install -q --no-build-isolation "sam2==1.1.0"
fi
# One intra-op thread: the tests use tiny models, where thread start-up costs more than it saves
# (and on a shared machine oversubscribed threads slow them 10x or more).
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
exec .venv/bin/python -m pytest -q "$@"
