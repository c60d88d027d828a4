"""Extract PE features from images and write PCA pictures (image | PCA of patch features).

Without images it runs on a built-in generated scene. Without --weights the model has random
weights (no hub access here): the picture then shows the network's structure, not semantics.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from pe_dense.cli.runtime_opts import add_runtime_arguments, open_runtime

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("images", nargs="*", help="image files (default: built-in sample)")
    parser.add_argument("--model", default="PE-Spatial-T16-512",
                        help="PE variant name (default %(default)s; pe-dense info lists them)")
    parser.add_argument("--weights", help="checkpoint path or hf://facebook/NAME (default: "
                        "random weights, marked on the pictures)")
    parser.add_argument("--layer", type=int, default=-1, help="0-based block index, -1 last")
    parser.add_argument("--resolution", type=int, default=448,
                        help="short side in pixels (default %(default)s)")
    parser.add_argument("--out", default="outputs/features",
                        help="output folder (default %(default)s)")
    parser.add_argument("--save-features", action="store_true", help="also write .pt maps")
    add_runtime_arguments(parser, "a variant exported with --layers including --layer "
                          "(and --dynamic, or at the size the images are resized to)")


def _backbone(args: argparse.Namespace):
    """The PEViT, or with --runtime onnxruntime the exported one (model name and weights
    marking taken from the export's metadata)."""
    session = open_runtime(args)
    if session is None:
        from pe_dense import create_backbone

        return create_backbone(args.model, weights=args.weights).eval()
    from pe_dense.runtime import SessionBackbone

    args.model = session.spec.get("source") or args.onnx
    args.weights = None if session.spec.get("random_weights", True) else args.onnx
    return SessionBackbone(session)


def run(args: argparse.Namespace) -> int:
    from PIL import Image

    from pe_dense.backbone.weights import save_checkpoint
    from pe_dense.cli.common import now, print_written
    from pe_dense.data.images import read_rgb
    from pe_dense.data.samples import sample_image
    from pe_dense.utils.io import atomic_write_text
    from pe_dense.viz.banner import mark_random, weights_record
    from pe_dense.viz.pca import pca_picture

    started = now()
    model = _backbone(args)
    if not args.weights:
        log.warning("no --weights: %s has random weights (pictures are marked so)", args.model)
    if args.resolution < model.patch_size:
        raise ValueError(f"--resolution {args.resolution} is below the patch size "
                         f"{model.patch_size}: use at least {model.patch_size} (e.g. 448)")
    inputs = [(Path(p).stem, read_rgb(p)) for p in args.images] or [("sample", sample_image())]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    records = []
    for stem, image in inputs:
        picture, feats, (h, w) = pca_picture(model, image, args.layer, args.resolution)
        path = out / f"{stem}_pca.png"
        Image.fromarray(mark_random(picture, args.weights is None)).save(path)
        if args.save_features:
            save_checkpoint({"features": feats.clone(), "layer": args.layer,
                             "model": args.model}, out / f"{stem}_features.pt")
        records.append({"image": stem, "picture": path.name, "input": [w, h],
                        "features": list(feats.shape)})
        print(f"{stem}: input {w}x{h}, features {tuple(feats.shape)} "
              f"(layer {args.layer}) -> {path}")
    atomic_write_text(out / "features.json", json.dumps(
        {"model": args.model, "weights": weights_record(args.weights), "layer": args.layer,
         "resolution": args.resolution, "images": records}, indent=1) + "\n")
    print_written(out, started)
    return 0
