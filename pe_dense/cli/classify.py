"""Zero-shot image classification with PE-Core's CLIP (image and text towers).

Labels are embedded through prompt templates (default: the 80 CLIP ImageNet templates,
averaged) and ranked by cosine similarity. Models with a text tower: PE-Core-{G14-448,
L14-336, B16-224, S16-384, T16-384} (PE-Spatial and PE-Lang have none). Examples::

    pe-dense classify cat.jpg dog.png --model PE-Core-B16-224 --weights PE-Core-B16-224.pt \\
        --labels "a cat,a dog,a car" --topk 2
    pe-dense classify photos/*.jpg --model PE-Core-T16-384 \\
        --weights hf://facebook/PE-Core-T16-384 --labels-file classes.txt --json out.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from pe_dense.cli.options import add_device_option, add_model_option, add_weights_option


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("images", nargs="+", help="image files")
    add_model_option(parser, clip=True)
    add_weights_option(parser)
    labels = parser.add_mutually_exclusive_group(required=True)
    labels.add_argument("--labels", help='comma-separated labels, e.g. "a cat,a dog"')
    labels.add_argument("--labels-file", help="text file, one label per line")
    parser.add_argument("--templates", default="imagenet",
                        help="imagenet (80, default), simple (7), none, or a file of templates")
    parser.add_argument("--topk", type=int, default=5, help="labels printed per image")
    parser.add_argument("--json", default=None, help="also write the results to this file")
    add_device_option(parser)


def run(args: argparse.Namespace) -> int:
    from pe_dense.backbone.clip import create_clip
    from pe_dense.data.images import read_rgb
    from pe_dense.tasks.open_vocab.prompts import get_templates, parse_prompts, read_prompts_file
    from pe_dense.tasks.open_vocab.zero_shot import ZeroShotClassifier
    from pe_dense.utils.device import pick_device

    if args.topk < 1:
        raise ValueError("--topk must be at least 1")
    labels = parse_prompts(args.labels) if args.labels is not None else \
        read_prompts_file(args.labels_file)
    templates = get_templates(args.templates)
    images = [read_rgb(p) for p in args.images]
    clip = create_clip(args.model, weights=args.weights).to(pick_device(args.device or "auto"))
    if args.weights is None:
        print("warning: random weights (no --weights): the ranking is meaningless")
    results = ZeroShotClassifier(clip, labels, templates)(images, args.topk)
    for path, ranked in zip(args.images, results, strict=True):
        print(path)
        for label, prob in ranked:
            print(f"  {prob:7.2%}  {label}")
    if args.json:
        Path(args.json).write_text(json.dumps(
            [{"image": p, "top": [{"label": lab, "prob": v} for lab, v in r]}
             for p, r in zip(args.images, results, strict=True)], indent=2))
        print(f"results in {args.json}")
    return 0
