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
    import numpy as np
    import torch
    from PIL import Image

    from pe_dense import create_backbone
    from pe_dense.backbone.weights import save_checkpoint
    from pe_dense.data.samples import sample_image
    from pe_dense.data.transforms import resize_to_multiple, to_input
    from pe_dense.viz.drawing import PCAColorizer

    if not args.weights:
        log.warning("no --weights: %s has random weights", args.model)
    model = create_backbone(args.model, weights=args.weights).eval()
    inputs = [(Path(p).stem, _read_rgb(p)) for p in args.images] or [("sample", sample_image())]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for stem, image in inputs:
        x = resize_to_multiple(to_input(image)[None], args.resolution, model.patch_size)
        with torch.inference_mode():
            (feats,) = model.forward_intermediates(x, indices=[args.layer])
        rgb = PCAColorizer().fit(feats[0]).transform(feats[0]).numpy()
        h, w = image.shape[:2]
        pca = np.asarray(Image.fromarray(rgb).resize((w, h), Image.NEAREST))
        path = out / f"{stem}_pca.png"
        Image.fromarray(np.concatenate([image, pca], axis=1)).save(path)
        if args.save_features:
            save_checkpoint({"features": feats[0].clone(), "layer": args.layer,
                             "model": args.model}, out / f"{stem}_features.pt")
        print(f"{stem}: input {x.shape[-1]}x{x.shape[-2]}, features {tuple(feats.shape[1:])} "
              f"(layer {args.layer}) -> {path}")
    return 0


def _read_rgb(path: str):
    import numpy as np
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            return np.asarray(im.convert("RGB"))
    except (FileNotFoundError, UnidentifiedImageError) as exc:
        raise ValueError(f"cannot read image {path}: {exc}") from exc
