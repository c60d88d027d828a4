"""One rank of the DDP/FSDP memory benchmark, started by
:func:`pe_dense.benchmark.strategies.measure_strategy` under ``torchrun``:

    torchrun --nproc_per_node N -m pe_dense.benchmark.strategy_worker \
        CASE_JSON STRATEGY GC STEPS OUT

Builds the case's backbone (random weights, float32) with an AdamW optimiser, wraps it in
DistributedDataParallel or shards it per block with FSDP2, runs STEPS training steps (forward,
mean-square loss, backward, optimiser step) and writes ``OUT/rank<R>.json`` with the figures
described in :mod:`pe_dense.benchmark.strategies`.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch
import torch.distributed as dist
from torch import nn

from pe_dense.benchmark.core import Case, build_backbone, make_input, sync
from pe_dense.benchmark.memory import mark_memory, peak_mib, status_mib
from pe_dense.utils.sharding import local_state_bytes, shard_model


class _Features(nn.Module):
    """``forward`` = the backbone's ``forward_features`` (DDP and FSDP hook ``forward``)."""

    def __init__(self, backbone: nn.Module) -> None:
        super().__init__()
        self.backbone = backbone

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.backbone.forward_features(x)


def _wrap(model: nn.Module, strategy: str, device: str) -> nn.Module:
    if strategy == "fsdp":
        blocks = tuple({type(b) for b in model.backbone.blocks()})
        return shard_model(model, blocks, device_type=device.split(":")[0])
    ids = [torch.cuda.current_device()] if device.startswith("cuda") else None
    return nn.parallel.DistributedDataParallel(model, device_ids=ids)


def measure(case: Case, strategy: str, grad_checkpointing: bool, steps: int) -> dict:
    """This rank's figures (MiB, seconds) for ``steps`` training steps of ``case``."""
    device = case.device
    if device.startswith("cuda"):
        torch.cuda.set_device(dist.get_rank() % torch.cuda.device_count())
        device = f"cuda:{torch.cuda.current_device()}"
    backbone = build_backbone(replace(case, device=device)).train()
    backbone.set_grad_checkpointing(grad_checkpointing)
    model = _wrap(_Features(backbone), strategy, device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    x = make_input(case, backbone).to(device)
    before = status_mib("VmHWM")  # building (and, under FSDP, sharding) the model
    start = mark_memory(device)
    began = time.perf_counter()
    for _ in range(steps):
        optimizer.zero_grad(set_to_none=False)
        model(x).square().mean().backward()
        optimizer.step()
    sync(device)
    seconds = (time.perf_counter() - began) / steps
    peak = peak_mib(device)
    state = {k: v / 2**20 for k, v in local_state_bytes(model, optimizer).items()}
    return dict(rank=dist.get_rank(), world_size=dist.get_world_size(), **state,
                state=sum(state.values()), step_peak=peak - start,
                peak=peak if device.startswith("cuda") else max(before, peak), step_s=seconds)


def main(argv: list[str] | None = None) -> int:
    """``argv``: [CASE_JSON, STRATEGY, GC (0/1), STEPS, OUT_DIR]."""
    case_json, strategy, gc, steps, out = argv if argv is not None else sys.argv[1:]
    case = Case(**json.loads(case_json))
    dist.init_process_group("nccl" if case.device.startswith("cuda") else "gloo")
    try:
        row = measure(case, strategy, bool(int(gc)), int(steps))
        Path(out, f"rank{row['rank']}.json").write_text(json.dumps(row))
    finally:
        dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main())
