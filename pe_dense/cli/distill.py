"""Distil a student's last layer to frozen teachers (PE layer, SAM 2 mask logits) from a config.

Runs on mmengine (pe_dense.engine.build_runner). Teacher targets are read from the config's
cache when `pe-dense distill-cache CONFIG` has written it, else the teachers run online.
Writes checkpoints, logs and `student.pt` (load with create_backbone(VARIANT, weights=...))
to the work dir. Several processes: torchrun --nproc_per_node N tools/distill.py CONFIG
--launcher pytorch (add --strategy fsdp --grad-checkpointing for students too large for DDP).
"""

from __future__ import annotations

import argparse

from pe_dense.cli.options import add_run_options
from pe_dense.cli.train import add_strategy_arguments


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", help="configs/distill/*.py")
    add_run_options(parser)
    parser.add_argument("--resume", action="store_true",
                        help="continue from the newest checkpoint in the work dir")
    parser.add_argument("--amp", action="store_true", help="mixed precision (CUDA only)")
    add_strategy_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from pe_dense.engine import build_runner

    runner = build_runner(args.config, work_dir=args.work_dir, resume=args.resume, amp=args.amp,
                          cfg_options=args.cfg_options, launcher=args.launcher,
                          strategy=args.strategy, grad_checkpointing=args.grad_checkpointing,
                          offload=args.cpu_offload, verbose=args.verbose)
    runner.train()
    return 0
