"""Open-vocabulary segmentation from text prompts: per-pixel labels and a score map per prompt.

Two ways to get a dense map from text:

- PE-Core, training-free (``--recipe selfself`` default, or ``maskclip``): the last block (or
  ``--layer``) is modified so patch tokens land in the image-text space (see
  pe_dense.tasks.open_vocab.dense_clip). Models with a text tower: PE-Core-{G14-448, L14-336,
  B16-224, S16-384, T16-384}.
- Any PE tower (PE-Spatial) with a trained bridge (``--bridge work_dir/bridge.pth`` from a
  configs/open_vocab/ training run): the bridge maps text embeddings into the tower's patch
  space and adds a background class.

Writes, per image, into --out: NAME_labels.png (class index per pixel, in --prompts order;
with a bridge 0 = background), NAME_overlay.png (labels + legend), NAME_scores.png (one heat map
per class) and NAME_scores.npz (float16 (K, H, W) softmax scores); ``--no-save`` writes none of
them.

``--eval-labels DIR`` scores the label maps against ground truth: DIR/<image stem>.png holds
class indices in the same order as the labels written (class i = the i-th prompt; with a bridge
0 = its background and the prompts start at 1; give PE-Core a "background" prompt first if the
labels have one), ``--ignore-index`` (default 255) not scored. Writes --out/metrics.json (per-class
IoU, mIoU, pixel accuracy, and the image-independent baseline: per pixel position the most
frequent ground-truth class; see pe_dense.tasks.open_vocab.evaluate) and prints one summary line.
Examples::

    pe-dense segment-text street.jpg --model PE-Core-B16-224 --weights PE-Core-B16-224.pt \\
        --prompts "sky,road,car,building,tree" --out seg/
    pe-dense segment-text street.jpg --model PE-Spatial-B16-512 --weights PE-Spatial-B16-512.pt \\
        --bridge work_dirs/bridge_b16/bridge.pth --text-weights PE-Core-B16-224.pt \\
        --prompts "sky,road,car" --out seg/
    pe-dense segment-text world/test/images/*.png --model PE-Mini --weights clip.pt \\
        --prompts "background,circle,square,triangle,star" --short-side 0 \\
        --eval-labels world/test/labels --no-save --out eval/
"""

from __future__ import annotations

import argparse
from pathlib import Path

from pe_dense.cli.options import add_device_option, add_output_option


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("images", nargs="+", help="image files")
    parser.add_argument("--prompts", default=None,
                        help='comma-separated class prompts, e.g. "sky,road,car" (with --bridge '
                             "the bridge's training prompts when omitted)")
    add_output_option(parser, required=True)
    parser.add_argument("--model", default=None,
                        help="PE-Core variant (default PE-Core-B16-224), or with --bridge the "
                             "bridge's backbone (checked)")
    parser.add_argument("--weights", default=None,
                        help="checkpoint: full CLIP .pt for PE-Core; the backbone's .pt with "
                             "--bridge (default: the one recorded in the bridge file)")
    parser.add_argument("--bridge", default=None, help="bridge file from a bridge training run")
    parser.add_argument("--text-weights", default=None,
                        help="with --bridge: the full CLIP checkpoint of its text tower")
    parser.add_argument("--recipe", default="selfself", choices=("selfself", "maskclip"),
                        help="training-free recipe for PE-Core (default selfself)")
    parser.add_argument("--layer", type=int, default=-1,
                        help="PE-Core block made dense (later blocks skipped); default -1")
    parser.add_argument("--templates", default="imagenet",
                        help="PE-Core prompt templates: imagenet (default), simple, none, a file")
    parser.add_argument("--short-side", type=int, default=448,
                        help="resize images so the short side is this (0: keep the size)")
    evaluation = parser.add_argument_group("scoring against ground truth")
    evaluation.add_argument("--eval-labels", metavar="DIR", default=None,
                            help="folder of ground-truth label PNGs named like the images "
                                 "(class i = the i-th class written; with --bridge 0 is "
                                 "background): writes OUT/metrics.json with mIoU, pixel "
                                 "accuracy, per-class IoU and the image-independent baseline")
    evaluation.add_argument("--ignore-index", type=int, default=255,
                            help="label value not scored (default 255)")
    parser.add_argument("--no-save", action="store_true",
                        help="write no per-image files (labels, overlay, scores): with "
                             "--eval-labels only metrics.json")
    add_device_option(parser)


def build_model(args: argparse.Namespace):  # -> TextSegmenter (heavy imports inside)
    from pe_dense.tasks.open_vocab.prompts import get_templates, parse_prompts

    prompts = parse_prompts(args.prompts) if args.prompts is not None else None
    if args.bridge:
        from pe_dense.tasks.open_vocab.bridge import load_bridge

        text = {"weights": args.text_weights} if args.text_weights else {}
        model = load_bridge(args.bridge, backbone_weights=args.weights, prompts=prompts, **text)
        name = model.spec["backbone"]["name"]
        if args.model and args.model != name:
            raise ValueError(f"the bridge {args.bridge} was trained on {name}, not {args.model}")
        spec = model.spec
        return model, bool(args.weights or spec["backbone"].get("weights")
                           or not spec["freeze_backbone"])
    from pe_dense.backbone.clip import create_clip
    from pe_dense.tasks.open_vocab.dense_clip import ClipSegmenter

    if prompts is None:
        raise ValueError("no prompts given: pass --prompts 'sky,road,car'")
    clip = create_clip(args.model or "PE-Core-B16-224", weights=args.weights)
    model = ClipSegmenter(clip, prompts, recipe=args.recipe, layer=args.layer,
                          templates=get_templates(args.templates))
    return model, args.weights is not None


def run(args: argparse.Namespace) -> int:
    from pe_dense.cli.common import now, print_written
    from pe_dense.data.images import read_rgb
    from pe_dense.tasks.open_vocab.evaluate import TextMapScorer, format_summary, pair_labels
    from pe_dense.tasks.open_vocab.model import segment_image
    from pe_dense.utils.device import pick_device

    if args.no_save and not args.eval_labels:
        raise ValueError("--no-save without --eval-labels would write nothing: add "
                         "--eval-labels DIR, or drop --no-save")
    labels_of = pair_labels(args.images, args.eval_labels) if args.eval_labels else None
    started = now()
    model, trained = build_model(args)
    model.to(pick_device(args.device or "auto"))
    if not trained:
        print("warning: random weights (no --weights): the maps are meaningless")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    names = list(model.class_names)
    scorer = TextMapScorer(names, args.ignore_index) if labels_of else None
    for k, path in enumerate(args.images):
        image = read_rgb(path)
        labels, scores = segment_image(model, image, args.short_side or None)
        if scorer is not None:
            scorer.update(labels, labels_of[k])
        if not args.no_save:
            _save(out, Path(path).stem, image, labels, scores, names, trained)
            shares = {n: float((labels == i).mean()) for i, n in enumerate(names)}
            top = ", ".join(f"{n} {v:.0%}" for n, v in
                            sorted(shares.items(), key=lambda t: -t[1]) if v > 0)
            print(f"{path}: {top}")
    if scorer is not None:
        result = _write_metrics(out / "metrics.json", scorer, model, args, trained)
        print(f"{format_summary(result)}{'' if trained else ' (random weights)'}")
    print_written(out, started)
    return 0


def _save(out: Path, stem: str, image, labels, scores, names: list[str], trained: bool) -> None:
    """NAME_labels.png, NAME_overlay.png, NAME_scores.png and NAME_scores.npz."""
    import numpy as np
    from PIL import Image

    from pe_dense.viz.banner import mark_random
    from pe_dense.viz.heatmaps import score_panel
    from pe_dense.viz.overlays import draw_segmentation

    Image.fromarray(labels.astype(np.uint8)).save(out / f"{stem}_labels.png")
    overlay = mark_random(draw_segmentation(image, labels, names), not trained)
    Image.fromarray(overlay).save(out / f"{stem}_overlay.png")
    panel = mark_random(score_panel(image, scores, names), not trained)
    Image.fromarray(panel).save(out / f"{stem}_scores.png")
    np.savez_compressed(out / f"{stem}_scores.npz", scores=scores.astype(np.float16),
                        names=np.array(names))


def _write_metrics(path: Path, scorer, model, args: argparse.Namespace, trained: bool) -> dict:
    """metrics.json (atomically): the run (prompts, model, recipe / layer or bridge, weights or
    "random") and the scorer's metrics and baseline."""
    import json

    from pe_dense.utils.io import atomic_write_text

    if args.bridge:
        spec = model.spec["backbone"]
        run = {"model": spec["name"], "recipe": None, "layer": None, "bridge": args.bridge,
               "weights": args.weights or spec.get("weights")}
    else:
        run = {"model": args.model or "PE-Core-B16-224", "recipe": args.recipe,
               "layer": args.layer, "bridge": None, "weights": args.weights,
               "templates": args.templates}
    if not trained:
        run["weights"] = "random"
    result = {"prompts": list(model.prompts), "class_names": list(model.class_names), **run,
              "random_weights": not trained, "short_side": args.short_side,
              "labels": str(args.eval_labels), "ignore_index": args.ignore_index,
              **scorer.compute()}
    atomic_write_text(path, json.dumps(result, indent=2) + "\n")
    return result
