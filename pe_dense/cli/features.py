"""Extract PE features from images and write PCA pictures (image | PCA of patch features).

Without images it runs on a built-in generated scene. Without --weights the model has random
weights (no hub access here): the picture then shows the network's structure, not semantics.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("images", nargs="*", help="image files (default: built-in sample)")
    parser.add_argument("--model", default="PE-Spatial-T16-512")
    parser.add_argument("--weights", help="checkpoint path or hf://facebook/NAME")
    parser.add_argument("--layer", type=int, default=-1, help="0-based block index, -1 last")
    parser.add_argument("--resolution", type=int, default=448, help="short side in pixels")
    parser.add_argument("--out", default="outputs/features", help="output folder")
    parser.add_argument("--save-features", action="store_true", help="also write .pt maps")


def run(args: argparse.Namespace) -> int:
    from PIL import Image

    from pe_dense import create_backbone
    from pe_dense.backbone.weights import save_checkpoint
    from pe_dense.data.images import read_rgb
    from pe_dense.data.samples import sample_image
    from pe_dense.viz.pca import pca_picture

    if not args.weights:
        log.warning("no --weights: %s has random weights", args.model)
    model = create_backbone(args.model, weights=args.weights).eval()
    inputs = [(Path(p).stem, read_rgb(p)) for p in args.images] or [("sample", sample_image())]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for stem, image in inputs:
        picture, feats, (h, w) = pca_picture(model, image, args.layer, args.resolution)
        path = out / f"{stem}_pca.png"
        Image.fromarray(picture).save(path)
        if args.save_features:
            save_checkpoint({"features": feats.clone(), "layer": args.layer,
                             "model": args.model}, out / f"{stem}_features.pt")
        print(f"{stem}: input {w}x{h}, features {tuple(feats.shape)} "
              f"(layer {args.layer}) -> {path}")
    return 0
