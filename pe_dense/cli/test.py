"""Evaluate a checkpoint on a config's test split and write metrics.json in the work dir.

Example::

    pe-dense test configs/det/mask_rcnn_pe_spatial_b_coco.py work_dirs/b/iter_184375.pth
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from pe_dense.cli.options import add_run_options, add_runtime_options, open_runtime


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", help="mmengine Python config file")
    parser.add_argument("checkpoint", help="checkpoint saved by pe-dense train")
    add_run_options(parser)
    add_runtime_options(parser, "this config exported with pe-dense export CONFIG "
                          "--checkpoint CKPT --dynamic (add --int8 for the int8 file)")


def run(args: argparse.Namespace) -> int:
    from pe_dense.cli.common import now, print_written
    from pe_dense.engine.runner import test

    started = now()
    open_runtime(args)  # checks --runtime / --onnx before the runner is built
    metrics = test(args.config, args.checkpoint, work_dir=args.work_dir,
                   cfg_options=args.cfg_options, launcher=args.launcher,
                   onnx=args.onnx if args.runtime == "onnxruntime" else None,
                   verbose=args.verbose)
    if args.verbose:
        print(json.dumps(metrics, indent=2))
    print_written(args.work_dir or _config_work_dir(args), started)
    return 0


def _config_work_dir(args: argparse.Namespace) -> str:
    """The work dir the config names, else the default ``work_dirs/<config name>``."""
    from pe_dense.engine import load_config

    cfg = load_config(args.config, args.cfg_options)
    return cfg.get("work_dir") or str(Path("work_dirs") / Path(args.config).stem)
