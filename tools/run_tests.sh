#!/usr/bin/env bash
# The README's test command: sets up .venv with the dev extras, then runs the default test suite
# (slow tests excluded; run them with: .venv/bin/python -m pytest -m slow).
set -euo pipefail
cd "$(dirname "$0")/.."
venv="${PE_DENSE_VENV:-.venv}"
bash tools/setup_env.sh dev
# sam2 (the SAM 2 distillation teacher) is a source package: pure Python without its CUDA op.
if ! compgen -G "$venv/lib/python3*/site-packages/sam2-*.dist-info" >/dev/null; then
    echo "  installing sam2 1.1.0 (pure Python, no CUDA op)"
    if ! SAM2_BUILD_CUDA=0 "$venv/bin/python" -m pip install -q --disable-pip-version-check \
            --no-build-isolation "sam2==1.1.0" >>"$venv/setup.log" 2>&1; then
        echo "installing sam2 failed; the end of its log ($venv/setup.log):" >&2
        tail -n 40 "$venv/setup.log" >&2
        exit 1
    fi
fi
# One intra-op thread: the tests use tiny models, where thread start-up costs more than it saves
# (and on a shared machine oversubscribed threads slow them 10x or more).
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
echo "running the default test suite (slow tests: $venv/bin/python -m pytest -m slow)"
exec "$venv/bin/python" -m pytest -q "$@"
