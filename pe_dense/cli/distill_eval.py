"""Evaluate a distilled student: mean cosine to each teacher, pairwise-similarity correlation,
side-by-side PCA pictures (PNG) and, with --curves, the training curves.

Images: the config's held-out (val) split, with cached targets when the cache exists, or
--images (folders or files; teachers then run online). --baseline also scores the config's
initial (untrained) student. Also reported: an image-independent baseline (for each image the
mean target of the other images), which shows how much of a teacher is fixed positional
structure. Writes metrics.json, pca_*.png and curves.png to --out.
"""

from __future__ import annotations

import argparse
import logging

from pe_dense.cli.options import add_device_option, add_output_option

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", help="the distillation config the student was trained with")
    parser.add_argument("--checkpoint", required=True,
                        help="student.pt (exported) or an mmengine iter_*.pth checkpoint")
    parser.add_argument("--images", nargs="+", help="image folders or files (default: val split)")
    add_output_option(parser, when_missing="<checkpoint folder>/eval")
    parser.add_argument("--pictures", type=int, default=4, help="PCA pictures to write")
    parser.add_argument("--baseline", action="store_true", help="also score the initial student")
    parser.add_argument("--curves", nargs="?", const="", metavar="WORK_DIR",
                        help="plot training curves from WORK_DIR (default: checkpoint folder)")
    parser.add_argument("--batch-size", type=int, default=8)
    add_device_option(parser)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from pe_dense.cli.common import now, print_written
    from pe_dense.distill.report import evaluate_checkpoint
    from pe_dense.engine import load_config
    from pe_dense.engine.tasks.distill import TEACHER_BUILDERS
    from pe_dense.utils.device import pick_device

    started = now()
    cfg = load_config(args.config)
    ckpt = Path(args.checkpoint)
    if not ckpt.is_file():
        raise FileNotFoundError(f"checkpoint {ckpt} does not exist")
    out = Path(args.out) if args.out else ckpt.parent / "eval"
    result = evaluate_checkpoint(cfg, ckpt, out, images=args.images, batch_size=args.batch_size,
                                 device=str(pick_device(args.device)), baseline=args.baseline,
                                 pictures=args.pictures, teacher_builders=TEACHER_BUILDERS)
    for key, value in result["metrics"].items():
        base = f", initial student {result['baseline'][key]:.4f}" if args.baseline else ""
        const = result["constant_baseline"].get(key)
        const = f", image-independent baseline {const:.4f}" if const is not None else ""
        print(f"{key}: {value:.4f}{base}{const}")
    if args.curves is not None:
        from pe_dense.distill.evaluate import plot_training_curves

        path = plot_training_curves(args.curves or ckpt.parent, out / "curves.png")
        print(f"curves -> {path}")
    print(f"{result['images']} images evaluated")
    print_written(out, started)
    return 0
