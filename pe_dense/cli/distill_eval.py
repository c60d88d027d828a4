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
import json
import logging

from pe_dense.utils.io import atomic_path, atomic_write_text

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", help="the distillation config the student was trained with")
    parser.add_argument("--checkpoint", required=True,
                        help="student.pt (exported) or an mmengine iter_*.pth checkpoint")
    parser.add_argument("--images", nargs="+", help="image folders or files (default: val split)")
    parser.add_argument("--out", help="output folder (default: <checkpoint folder>/eval)")
    parser.add_argument("--pictures", type=int, default=4, help="PCA pictures to write")
    parser.add_argument("--baseline", action="store_true", help="also score the initial student")
    parser.add_argument("--curves", nargs="?", const="", metavar="WORK_DIR",
                        help="plot training curves from WORK_DIR (default: checkpoint folder)")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--device", help="default: cuda when available, else cpu")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    import torch

    from pe_dense.distill.data import DistillImageDataset
    from pe_dense.distill.evaluate import build_eval_model, constant_baseline, evaluate
    from pe_dense.engine import load_config

    cfg = load_config(args.config)
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    ckpt = Path(args.checkpoint)
    if not ckpt.is_file():
        raise FileNotFoundError(f"checkpoint {ckpt} does not exist")
    out = Path(args.out) if args.out else ckpt.parent / "eval"
    out.mkdir(parents=True, exist_ok=True)
    val = dict(cfg.val_dataloader.dataset if cfg.get("val_dataloader")
               else cfg.train_dataloader.dataset)
    val.pop("type", None)
    if args.images:
        val.update(roots=args.images, split="all", holdout_every=0, cache_dir=None)
    dataset = DistillImageDataset(**val)
    model = build_eval_model(cfg.model, ckpt, device)
    means, rows = evaluate(model, dataset, args.batch_size, device)
    result = {"checkpoint": str(ckpt), "images": len(dataset), "metrics": means,
              "per_image": rows}
    if args.baseline:
        start = build_eval_model(cfg.model, None, device)
        result["baseline"] = evaluate(start, dataset, args.batch_size, device)[0]
    result["constant_baseline"] = constant_baseline(model, dataset, device)
    _write_json(result, out / "metrics.json")
    _pictures(model, dataset, out, args.pictures, device)
    for key, value in means.items():
        base = f", initial student {result['baseline'][key]:.4f}" if args.baseline else ""
        const = result["constant_baseline"].get(key)
        const = f", image-independent baseline {const:.4f}" if const is not None else ""
        print(f"{key}: {value:.4f}{base}{const}")
    if args.curves is not None:
        from pe_dense.distill.evaluate import plot_training_curves

        path = plot_training_curves(args.curves or ckpt.parent, out / "curves.png")
        print(f"curves -> {path}")
    print(f"{len(dataset)} images; metrics -> {out / 'metrics.json'}")
    return 0


def _pictures(model, dataset, out, count: int, device) -> None:
    """Write image | student PCA | teacher PCAs for the first ``count`` images."""
    from pathlib import Path

    import numpy as np
    import torch
    from PIL import Image

    from pe_dense.distill.evaluate import feature_maps
    from pe_dense.viz.drawing import feature_panel

    for i in range(min(count, len(dataset))):
        item = dataset[i]
        cached = {k: v.to(device) for k, v in item.get("targets", {}).items()}
        maps = feature_maps(model, item["image"].to(device), cached)
        rgb = ((item["image"].permute(1, 2, 0) + 1) * 127.5).round().clamp(0, 255)
        panel = feature_panel(rgb.to(torch.uint8).numpy(), [(k, v.cpu()) for k, v in maps.items()])
        source = Path(dataset.files[i])
        path = out / f"pca_{i:02d}_{source.parent.name}_{source.stem}.png"
        with atomic_path(path) as tmp:
            Image.fromarray(np.ascontiguousarray(panel)).save(tmp)


def _write_json(obj, path) -> None:
    atomic_write_text(path, json.dumps(obj, indent=1))
