"""Convert a PE checkpoint between the official, timm and detectron2 layouts.

The source layout is detected (official, CLIP, timm, Hugging Face, detectron2). Conversions
that keep the patch size round-trip exactly; ``--patch-size 16`` for detectron2 resamples the
14x14 patch kernel of G/L models as the official detection code does (not invertible).
"""

from __future__ import annotations

import argparse
import logging

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("src", help="checkpoint path or hf://owner/repo[:file]")
    parser.add_argument("dst", help="output path (.pt/.pth, or .safetensors for timm/official)")
    parser.add_argument("--to", required=True, choices=("official", "timm", "detectron2"))
    parser.add_argument("--patch-size", type=int, default=None,
                        help="detectron2 only: resample conv1 to this kernel size (e.g. 16)")


def run(args: argparse.Namespace) -> int:
    from pe_dense.backbone.weights import (
        convert_state_dict,
        guess_variants,
        read_checkpoint,
        save_checkpoint,
        to_official,
    )

    obj = read_checkpoint(args.src)
    official, fmt = to_official(obj)
    if args.to == "detectron2" and args.dst.endswith(".safetensors"):
        raise ValueError("detectron2 checkpoints are {'model': ...} pickles: use a .pth path")
    out = convert_state_dict(official, args.to, patch_size=args.patch_size)
    save_checkpoint(out, args.dst)
    guess = ", ".join(guess_variants(official)) or "unknown variant"
    print(f"{args.src} ({fmt}, {guess}, {len(official)} tensors) -> {args.dst} ({args.to})")
    return 0
