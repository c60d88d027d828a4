"""Extract PE features from images and write PCA pictures (image | PCA of patch features).

Without images it runs on a built-in generated scene. Without --weights the model has random
weights (no hub access here): the picture then shows the network's structure, not semantics.

Each image is resized for the network: short side --resolution, long side at most --max-side,
both multiples of the patch size (aspect ratio kept). Images are read with the project's one
reader: a file that is missing, not an image, truncated, over --max-pixels (a decompression
bomb) or more elongated than --max-aspect is reported in one line and skipped; the others are
still processed, and features.json lists the failures.

Exit codes: 0 every image written; 1 some images could not be read (reported and skipped, the
others written); 2 bad arguments or a model/weights error (nothing written).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from pe_dense.cli.options import (
    add_model_option,
    add_output_option,
    add_runtime_options,
    add_weights_option,
    open_runtime,
)

log = logging.getLogger(__name__)

_PICTURE_MAX_SIDE = 4096  # pixels: larger images are shrunk for the written picture


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("images", nargs="*", help="image files (default: built-in sample); "
                        "unreadable ones are reported and skipped (exit code 1)")
    add_model_option(parser)
    add_weights_option(parser)
    parser.add_argument("--layer", type=int, default=-1, help="0-based block index, -1 last")
    parser.add_argument("--resolution", type=int, default=448,
                        help="network input short side in pixels (default %(default)s)")
    parser.add_argument("--max-side", type=int, metavar="PIXELS",
                        help="network input long side at most this (default 4 x --resolution): "
                        "very wide or tall images are shrunk to fit")
    parser.add_argument("--max-pixels", type=int, metavar="N",
                        help="refuse images with more pixels (decompression bombs; default "
                        "178956970, PIL's limit)")
    parser.add_argument("--max-aspect", type=float, metavar="RATIO",
                        help="refuse images whose long / short side is over this (default 100)")
    add_output_option(parser, default="outputs/features")
    parser.add_argument("--save-features", action="store_true", help="also write .pt maps")
    add_runtime_options(parser, "a variant exported with --layers including --layer "
                          "(and --dynamic, or at the size the images are resized to)")


def _backbone(args: argparse.Namespace):
    """The backbone, or with --runtime onnxruntime the exported one (model name and weights
    marking taken from the export's metadata)."""
    session = open_runtime(args)
    if session is None:
        from pe_dense import create_backbone

        return create_backbone(args.model, weights=args.weights).eval()
    from pe_dense.runtime import SessionBackbone

    args.model = session.spec.get("source") or args.onnx
    args.weights = None if session.spec.get("random_weights", True) else args.onnx
    return SessionBackbone(session)


def _limits(args: argparse.Namespace):
    """The :class:`~pe_dense.data.images.ImageLimits` of --max-pixels / --max-aspect."""
    from pe_dense.data.images import ImageLimits

    given = {"max_pixels": args.max_pixels, "max_aspect": args.max_aspect}
    return ImageLimits(**{k: v for k, v in given.items() if v is not None})


def _one(model, args: argparse.Namespace, stem: str, image, out: Path,
         max_side: int) -> dict:
    """The PCA picture (and features) of one image; its record for features.json."""
    from PIL import Image

    from pe_dense.backbone.weights import save_checkpoint
    from pe_dense.data.images import contract_scale, fit_to_contract
    from pe_dense.utils.io import atomic_path
    from pe_dense.viz.banner import mark_random
    from pe_dense.viz.pca import pca_picture

    # pictures are drawn at most _PICTURE_MAX_SIDE long; the network input is fitted below
    image = fit_to_contract(image, max_side=_PICTURE_MAX_SIDE)[0]
    short = contract_scale(image.shape[:2], model.patch_size, 0, max_side, args.resolution) \
        * min(image.shape[:2])
    picture, feats, (h, w) = pca_picture(model, image, args.layer, short)
    path = out / f"{stem}_pca.png"
    with atomic_path(path) as tmp:
        Image.fromarray(mark_random(picture, args.weights is None)).save(tmp)
    if args.save_features:
        save_checkpoint({"features": feats.clone(), "layer": args.layer,
                         "model": args.model}, out / f"{stem}_features.pt")
    print(f"{stem}: input {w}x{h}, features {tuple(feats.shape)} (layer {args.layer}) -> {path}")
    return {"image": stem, "picture": path.name, "input": [w, h], "features": list(feats.shape)}


def run(args: argparse.Namespace) -> int:
    from pe_dense.cli.common import now, print_written
    from pe_dense.data.images import BadImageError, read_rgb
    from pe_dense.data.samples import sample_image
    from pe_dense.utils.io import atomic_write_text
    from pe_dense.viz.banner import weights_record

    started = now()
    limits = _limits(args)
    model = _backbone(args)
    if not args.weights:
        log.warning("no --weights: %s has random weights (pictures are marked so)", args.model)
    p = model.patch_size
    max_side = args.max_side or 4 * args.resolution
    if args.resolution < p or max_side < p:
        raise ValueError(f"--resolution {args.resolution} / --max-side {max_side} below the "
                         f"patch size {p}: use at least {p} (e.g. --resolution 448)")
    sources = [(Path(path).stem, path) for path in args.images] or [("sample", None)]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    records, failed = [], []
    for stem, source in sources:
        try:
            image = read_rgb(source, limits) if source else sample_image()
        except BadImageError as exc:
            print(f"pe-dense features: skipped {exc}", file=sys.stderr)
            failed.append({"image": str(source), "error": str(exc)})
            continue
        records.append(_one(model, args, stem, image, out, max_side))
    atomic_write_text(out / "features.json", json.dumps(
        {"model": args.model, "weights": weights_record(args.weights), "layer": args.layer,
         "resolution": args.resolution, "max_side": max_side, "images": records,
         "failed": failed}, indent=1) + "\n")
    print_written(out, started)
    if failed:
        print(f"pe-dense features: {len(failed)} of {len(sources)} images could not be read "
              "(listed above and in features.json); exit code 1", file=sys.stderr)
        return 1
    return 0
