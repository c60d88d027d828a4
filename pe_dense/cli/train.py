"""Train a model from an mmengine config (any task: detection, segmentation, depth, distill).

Examples::

    pe-dense train configs/det/mask_rcnn_pe_spatial_b_coco.py --work-dir work_dirs/b
    pe-dense train CONFIG --resume                       # continue a killed run
    pe-dense train CONFIG --cfg-options train_cfg.max_iters=1000 model.backbone.weights=ckpt.pt
    torchrun --nproc_per_node 2 tools/train.py CONFIG --launcher pytorch
    torchrun --nproc_per_node 8 tools/train.py CONFIG --launcher pytorch --strategy fsdp \
        --grad-checkpointing                              # large models: sharded, see README
"""

from __future__ import annotations

import argparse

from pe_dense.cli.options import add_run_options


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", help="mmengine Python config file")
    add_run_options(parser)
    parser.add_argument("--resume", action="store_true",
                        help="continue from the newest checkpoint in the work dir")
    parser.add_argument("--amp", action="store_true", help="mixed precision (CUDA only)")
    parser.add_argument("--tensorboard", action="store_true",
                        help="also write TensorBoard scalars (needs the tensorboard package)")
    add_strategy_arguments(parser)


def add_strategy_arguments(parser: argparse.ArgumentParser) -> None:
    """--strategy, --grad-checkpointing, --cpu-offload (shared with `pe-dense distill`)."""
    parser.add_argument("--strategy", choices=("ddp", "fsdp"), default=None,
                        help="data parallelism under torchrun: ddp (replicas, the default) or "
                        "fsdp (parameters, gradients and optimiser state sharded per backbone "
                        "block; checkpoints become folders of shards, see pe-dense consolidate)"
                        "; default: the config's strategy block")
    parser.add_argument("--grad-checkpointing", action="store_true",
                        help="recompute each backbone block's activations in backward (less "
                        "memory)")
    parser.add_argument("--cpu-offload", action="store_true",
                        help="fsdp on CUDA: keep shards, gradients and optimiser state in CPU "
                        "memory")


def run(args: argparse.Namespace) -> int:
    from pe_dense.engine.runner import train

    train(args.config, work_dir=args.work_dir, resume=args.resume, amp=args.amp,
          cfg_options=args.cfg_options, launcher=args.launcher, tensorboard=args.tensorboard,
          strategy=args.strategy, grad_checkpointing=args.grad_checkpointing,
          offload=args.cpu_offload, verbose=args.verbose)
    return 0
