#!/usr/bin/env bash
# Creates ./.venv (if needed) and installs pe_dense with the given extras, e.g.
#   bash tools/setup_env.sh dev,train
# torch/torchvision are pinned to the project's tested pair; PE_DENSE_VENV overrides the folder.
# One line per step; pip's own output goes to $venv/setup.log and is shown only when a step
# fails. A ready venv (same setup.cfg, pyproject.toml, pins and extras as the last set-up,
# recorded in $venv/.pe-dense-setup) is left alone in well under a second.
set -euo pipefail
cd "$(dirname "$0")/.."
venv="${PE_DENSE_VENV:-.venv}"
extras="${1:-}"
torch_version="2.14.1"
torchvision_version="0.29.1"
stamp="$venv/.pe-dense-setup"
key="$(cat setup.cfg pyproject.toml | sha256sum | cut -c1-16) extras=[$extras] torch=$torch_version"
if [ -x "$venv/bin/python" ] && [ -f "$stamp" ] && grep -qxF "$key" "$stamp"; then
    echo "set-up: $venv is ready (pe-dense[$extras], torch $torch_version); nothing to do"
    exit 0
fi

start=$SECONDS
log="$venv/setup.log"
step() {  # step "what it does" command...: quiet on success, the log's tail on failure
    local what="$1"
    shift
    echo "  $what"
    echo "== $what" >>"$log"
    if ! "$@" >>"$log" 2>&1; then
        echo "set-up failed while $what; the end of its log ($log):" >&2
        tail -n 40 "$log" >&2
        exit 1
    fi
}

python="$(command -v python3.11 || command -v python3)"
echo "set-up of $venv (pe-dense[$extras]); pip's output goes to $log"
if [ ! -x "$venv/bin/python" ]; then
    echo "  creating $venv with $("$python" --version 2>&1) ($python)"
    "$python" -m venv "$venv"
fi
: >"$log"
pip=("$venv/bin/python" -m pip install --disable-pip-version-check)
step "upgrading pip" "${pip[@]}" -q --upgrade pip
where="$("$venv/bin/python" -m pip config list 2>/dev/null | grep -o "find-links='[^']*'" \
         | head -n 1 | cut -d"'" -f2 || true)"
where="${where:+from local wheels in $where, else the package index}"
have="$("$venv/bin/python" - <<'PY' 2>/dev/null || true
from importlib.metadata import version
print(version("torch").split("+")[0], version("torchvision").split("+")[0])
PY
)"
if [ "$have" = "$torch_version $torchvision_version" ]; then
    echo "  torch $torch_version and torchvision $torchvision_version already installed"
else
    step "installing torch $torch_version, torchvision $torchvision_version (${where:-from the package index})" \
        "${pip[@]}" -q "torch==$torch_version" "torchvision==$torchvision_version"
fi
step "installing pe-dense${extras:+[$extras]} (editable) and its dependencies" \
    "${pip[@]}" -q -e ".${extras:+[$extras]}"
# Keep the stamps of other extras that are still current (same files and pins).
current="$(cat setup.cfg pyproject.toml | sha256sum | cut -c1-16)"
{ grep -F "$current " "$stamp" 2>/dev/null | grep -vxF "$key" || true; echo "$key"; } >"$stamp.new"
mv "$stamp.new" "$stamp"
echo "set-up ready in $((SECONDS - start)) s"
