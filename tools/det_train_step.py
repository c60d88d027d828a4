"""Time one Mask R-CNN training step (forward, loss, backward, AdamW step) on a synthetic batch,
and report its peak memory, with and without activation checkpointing of the PEViT blocks.

    python tools/det_train_step.py configs/det/mask_rcnn_pe_spatial_b_coco.py --size 1024 \
        --batch 2 --dtype bf16 --json det_step.json

On CUDA the peak is the allocator's (``max_memory_allocated``), on CPU the resident-set peak
of this process. Random weights (no download); the batch holds 3 boxes with masks per image.
Used by tools/gpu_benchmark.sh; runs on CPU with the tiny configs for a check:
    OMP_NUM_THREADS=1 python tools/det_train_step.py configs/det/mask_rcnn_pe_test_shapes_tiny.py \
        --size 64 --steps 2 --warmup 1 --device cpu --dtype fp32
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

from pe_dense.benchmark.core import DTYPES
from pe_dense.benchmark.memory import mark_memory, peak_mib
from pe_dense.data.collate import detection_collate
from pe_dense.data.det_transforms import PackDetInputs
from pe_dense.engine.fsdp import set_grad_checkpointing
from pe_dense.engine.registry import MODELS
from pe_dense.engine.runner import load_config
from pe_dense.utils.device import pick_device
from pe_dense.utils.io import atomic_write_text


def synthetic_batch(size: int, batch: int) -> dict:
    """``batch`` images of ``size`` x ``size`` with three boxes and masks each, collated."""
    rng = np.random.default_rng(0)
    samples = []
    for _ in range(batch):
        masks = np.zeros((3, size, size), np.uint8)
        boxes = []
        for j, (y, x) in enumerate(((0.1, 0.1), (0.4, 0.5), (0.6, 0.2))):
            y0, x0, side = int(y * size), int(x * size), size // 4
            masks[j, y0:y0 + side, x0:x0 + side] = 1
            boxes.append([x0, y0, x0 + side, y0 + side])
        results = {"image": rng.integers(0, 255, (size, size, 3), dtype=np.uint8),
                   "boxes": np.array(boxes, np.float32), "labels": np.array([0, 1, 2]),
                   "masks": masks, "ori_size": (size, size), "scale": (1.0, 1.0)}
        samples.append(PackDetInputs()(results))
    return detection_collate(samples, square_size=size)


def measure(args: argparse.Namespace, grad_checkpointing: bool) -> dict:
    """Median step time and peak memory of ``args.steps`` steps after ``args.warmup``."""
    device = pick_device(args.device)
    cfg = load_config(args.config)
    with MODELS.switch_scope_and_registry(cfg.get("default_scope")) as models:
        model = models.build(cfg.model).to(device).train()
    if grad_checkpointing:
        set_grad_checkpointing(model)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    batch = synthetic_batch(args.size, args.batch)
    images = batch["inputs"].to(device)
    samples = [{k: v.to(device) if torch.is_tensor(v) else v for k, v in s.items()}
               for s in batch["data_samples"]]
    dtype = DTYPES[args.dtype]
    times = []
    for i in range(args.warmup + args.steps):
        if i == args.warmup:
            mark_memory(device)
        start = time.perf_counter()
        with torch.autocast(device.type, dtype=dtype, enabled=dtype != torch.float32):
            loss = sum(model.loss(images, samples).values())
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if device.type == "cuda":
            torch.cuda.synchronize()
        if i >= args.warmup:
            times.append(time.perf_counter() - start)
    return dict(config=args.config, size=args.size, batch=args.batch, dtype=args.dtype,
                device=str(device), grad_checkpointing=grad_checkpointing,
                step_s=statistics.median(times), peak_mib=peak_mib(device),
                loss=float(loss.detach()))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("config")
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--dtype", choices=tuple(DTYPES), default="bf16")
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cuda if present)")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--json", help="write both rows to this JSON file")
    args = parser.parse_args(argv)
    rows = [measure(args, gc) for gc in (False, True)]
    for row in rows:
        print(f"{row['config']} {row['size']}px batch {row['batch']} {row['dtype']} "
              f"{row['device']} grad_checkpointing={row['grad_checkpointing']}: "
              f"{row['step_s'] * 1000:.1f} ms/step, peak {row['peak_mib']:.0f} MiB")
    if args.json:
        atomic_write_text(Path(args.json), json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
