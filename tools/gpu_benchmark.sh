#!/usr/bin/env bash
# The prepared GPU benchmark (issues 9 and 16), one script, results in OUT_DIR (default
# benchmark_gpu/); copy the tables into docs/benchmarks.md with the device line printed first.
#   bash tools/gpu_benchmark.sh [OUT_DIR]          # PEAK_TFLOPS=989 overrides the MFU peak
# 1. bf16 inference img/s and MFU, PE-Spatial T/B/L/G at 512 and 1024, eager and torch.compile,
#    timm's vit_pe side by side (mfu.md: achieved FLOP/s over the device's dense bf16 peak).
# 2. issue 9's sweep: T/B/L at 512/1024/1792, global and windowed, inference and training.
# 3. Mask R-CNN PE-Spatial-B at 1024, batch 2, bf16: one training step's time and peak memory,
#    with and without activation checkpointing (det_step.json).
# 4. DDP vs FSDP per-rank training memory of B and L at 1024 with activation checkpointing,
#    on every visible GPU (at least 2), as in docs/benchmarks.md's CPU table (strategies.md).
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-benchmark_gpu}"
py="${PYTHON:-.venv/bin/python}"
mkdir -p "$out"
"$py" -c "import torch; print(torch.__version__, torch.cuda.get_device_name(0))" | tee "$out/device.txt"

# 1. inference img/s + MFU, T/B/L/G at 512/1024, eager (with timm) and compiled
speed=(--model PE-Spatial-T16-512,PE-Spatial-B16-512,PE-Spatial-L14-448,PE-Spatial-G14-448
       --resolution 512,1024 --batch-size 8 --dtype bf16 --device cuda --mode inference
       --warmup 5 --repeats 20 --no-memory)
"$py" tools/benchmark.py "${speed[@]}" --compare timm --json "$out/speed_eager.json"
"$py" tools/benchmark.py "${speed[@]}" --compile --json "$out/speed_compiled.json"
"$py" - "$out" <<'EOF'
import json, os, sys
import torch

out = sys.argv[1]
name = torch.cuda.get_device_name(0)
# Dense bf16 tensor-core peaks (TFLOP/s, no sparsity); PEAK_TFLOPS overrides.
known = {"H200": 989.0, "H100": 989.0, "A100": 312.0, "L40S": 362.0, "A10": 125.0,
         "L4": 121.0, "4090": 165.0, "3090": 71.0}
peak = float(os.environ.get("PEAK_TFLOPS") or next(
    (v for k, v in known.items() if k in name), "nan"))
lines = [f"device: {name}, bf16 dense peak {peak} TFLOP/s", "",
         "| model | res | batch | impl | compile | img/s | TFLOP/s | MFU % |",
         "|---|---|---|---|---|---|---|---|"]
for file in ("speed_eager.json", "speed_compiled.json"):
    for r in json.load(open(os.path.join(out, file))):
        if r.get("status") != "ok":
            lines.append(f"| {r['model']} | {r['resolution']} | {r['batch_size']} | "
                         f"{r['impl']} | {r['compile']} | {r['status']} | | |")
            continue
        tflops = r["gflops"] / (r["latency_ms"] / 1e3) / 1e3
        lines.append(f"| {r['model']} | {r['resolution']} | {r['batch_size']} | {r['impl']} | "
                     f"{r['compile']} | {r['images_per_s']:.1f} | {tflops:.1f} | "
                     f"{100 * tflops / peak:.1f} |")
open(os.path.join(out, "mfu.md"), "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
EOF

# 2. issue 9's sweep (speed and memory; windowed attention; training)
common=(--model PE-Spatial-T16-512,PE-Spatial-B16-512,PE-Spatial-L14-448
        --resolution 512,1024,1792 --batch-size 1,8 --dtype bf16 --device cuda
        --warmup 5 --repeats 20)
"$py" tools/benchmark.py "${common[@]}" --attention global,windowed --mode inference,train \
    --compare timm --json "$out/eager.json" --csv "$out/eager.csv" --plot "$out/eager"
"$py" tools/benchmark.py "${common[@]}" --attention global,windowed --mode inference \
    --compile --json "$out/compiled.json" --csv "$out/compiled.csv" --plot "$out/compiled"

# 3. Mask R-CNN B@1024 batch 2: training step time and peak memory, +/- activation checkpointing
"$py" tools/det_train_step.py configs/det/mask_rcnn_pe_spatial_b_coco.py --size 1024 --batch 2 \
    --dtype bf16 --device cuda --warmup 3 --steps 10 --json "$out/det_step.json" \
    | tee "$out/det_step.txt"

# 4. DDP vs FSDP per-rank memory (needs 2+ GPUs)
gpus=$("$py" -c "import torch; print(torch.cuda.device_count())")
if [ "$gpus" -ge 2 ]; then
    "$py" tools/benchmark.py --mode train --strategy ddp,fsdp --grad-checkpointing \
        --model PE-Spatial-B16-512,PE-Spatial-L14-448 --resolution 1024 --device cuda \
        --nproc "$gpus" --steps 3 --json "$out/strategies.json" --markdown "$out/strategies.md"
else
    echo "one GPU: skipping the DDP/FSDP memory comparison (needs 2+)" | tee "$out/strategies.md"
fi
