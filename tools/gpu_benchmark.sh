#!/usr/bin/env bash
# The prepared GPU benchmark of issue 9: PE-Spatial T/B/L at 512/1024/1792, bf16, torch.compile
# off and on, global and windowed attention, inference and training, against timm where it
# applies. Results land in benchmark_gpu/ (JSON, CSV, plots); copy the table into
# docs/benchmarks.md with the device name printed at the top.
#   bash tools/gpu_benchmark.sh [OUT_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-benchmark_gpu}"
py="${PYTHON:-.venv/bin/python}"
mkdir -p "$out"
"$py" -c "import torch; print(torch.__version__, torch.cuda.get_device_name(0))" | tee "$out/device.txt"
common=(--model PE-Spatial-T16-512,PE-Spatial-B16-512,PE-Spatial-L14-448
        --resolution 512,1024,1792 --batch-size 1,8 --dtype bf16 --device cuda
        --warmup 5 --repeats 20)
"$py" tools/benchmark.py "${common[@]}" --attention global,windowed --mode inference,train \
    --compare timm --json "$out/eager.json" --csv "$out/eager.csv" --plot "$out/eager"
"$py" tools/benchmark.py "${common[@]}" --attention global,windowed --mode inference \
    --compile --json "$out/compiled.json" --csv "$out/compiled.csv" --plot "$out/compiled"
