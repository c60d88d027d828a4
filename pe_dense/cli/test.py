"""Evaluate a checkpoint on a config's test split and write metrics.json in the work dir.

Example::

    pe-dense test configs/det/mask_rcnn_pe_spatial_b_coco.py work_dirs/b/iter_184375.pth
"""

from __future__ import annotations

import argparse
import json


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", help="mmengine Python config file")
    parser.add_argument("checkpoint", help="checkpoint saved by pe-dense train")
    parser.add_argument("--work-dir", default=None,
                        help="where metrics.json and results go (default work_dirs/<config name>)")
    parser.add_argument("--cfg-options", nargs="+", default=None, metavar="KEY=VALUE",
                        help="override config entries")
    parser.add_argument("--launcher", choices=("none", "pytorch"), default="none")


def run(args: argparse.Namespace) -> int:
    from pe_dense.engine.runner import test

    metrics = test(args.config, args.checkpoint, work_dir=args.work_dir,
                   cfg_options=args.cfg_options, launcher=args.launcher)
    print(json.dumps(metrics, indent=2))
    return 0
