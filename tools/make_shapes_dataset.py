"""Write a deterministic synthetic COCO-format instance dataset of coloured shapes.

Each image (default 256 x 256) has 1-4 non-overlapping circles, squares and triangles of random
colour and size on a noisy random background; each shape is an instance with a polygon mask.
Layout::

    OUT/annotations/instances_{train,val}.json
    OUT/{train,val}/000000.png ...

Usage: ``python tools/make_shapes_dataset.py OUT [--train 400] [--val 50] [--size 256]
[--seed 0]``. The same arguments always give the same files.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

CATEGORIES = [{"id": 1, "name": "circle"}, {"id": 2, "name": "square"},
              {"id": 3, "name": "triangle"}]


def shape_polygon(kind: str, cx: float, cy: float, r: float, angle: float) -> list[float]:
    """Flat [x0, y0, x1, y1, ...] outline of a shape of circumradius ``r``."""
    n = {"circle": 32, "square": 4, "triangle": 3}[kind]
    start = angle if kind != "circle" else 0.0
    pts = []
    for i in range(n):
        a = start + 2 * math.pi * i / n
        pts += [cx + r * math.cos(a), cy + r * math.sin(a)]
    return pts


def make_image(rng: np.random.Generator, size: int) -> tuple[Image.Image, list[dict]]:
    """One image and its instances (``kind``, ``polygon``)."""
    bg = rng.integers(0, 256, 3)
    noise = rng.normal(0, 12, (size, size, 3))
    canvas = np.clip(bg[None, None] + noise, 0, 255).astype(np.uint8)
    image = Image.fromarray(canvas)
    draw = ImageDraw.Draw(image)
    placed: list[tuple[float, float, float]] = []
    shapes = []
    for _ in range(int(rng.integers(1, 5))):
        for _attempt in range(50):
            r = float(rng.uniform(0.06, 0.22) * size)
            cx, cy = (float(v) for v in rng.uniform(r, size - r, 2))
            if all(math.hypot(cx - x, cy - y) > r + pr + 2 for x, y, pr in placed):
                break
        else:
            continue
        placed.append((cx, cy, r))
        kind = ["circle", "square", "triangle"][int(rng.integers(0, 3))]
        poly = shape_polygon(kind, cx, cy, r, float(rng.uniform(0, 2 * math.pi)))
        colour = rng.integers(0, 256, 3)
        while np.abs(colour - bg).sum() < 150:  # keep shapes visible against the background
            colour = rng.integers(0, 256, 3)
        draw.polygon(poly, fill=tuple(int(c) for c in colour))
        shapes.append({"kind": kind, "polygon": poly})
    return image, shapes


def write_split(out: Path, split: str, count: int, size: int, seed: int) -> int:
    """Write one split; returns the number of annotations."""
    rng = np.random.default_rng([seed, {"train": 0, "val": 1}[split]])
    (out / split).mkdir(parents=True, exist_ok=True)
    images, annotations = [], []
    cat_id = {c["name"]: c["id"] for c in CATEGORIES}
    for i in range(count):
        image, shapes = make_image(rng, size)
        name = f"{i:06d}.png"
        image.save(out / split / name)
        images.append({"id": i + 1, "file_name": name, "height": size, "width": size})
        for shape in shapes:
            xs, ys = shape["polygon"][0::2], shape["polygon"][1::2]
            x0, y0 = max(min(xs), 0.0), max(min(ys), 0.0)
            x1, y1 = min(max(xs), size), min(max(ys), size)
            area = 0.5 * abs(sum(xs[k] * ys[k - 1] - xs[k - 1] * ys[k] for k in range(len(xs))))
            annotations.append({
                "id": len(annotations) + 1, "image_id": i + 1,
                "category_id": cat_id[shape["kind"]], "iscrowd": 0,
                "bbox": [x0, y0, x1 - x0, y1 - y0], "area": area,
                "segmentation": [[round(v, 2) for v in shape["polygon"]]],
            })
    data = {"info": {"description": f"pe_dense synthetic shapes, seed {seed}"},
            "images": images, "annotations": annotations, "categories": CATEGORIES}
    ann = out / "annotations" / f"instances_{split}.json"
    ann.parent.mkdir(parents=True, exist_ok=True)
    tmp = ann.with_name(f".{ann.name}.tmp")
    tmp.write_text(json.dumps(data))
    os.replace(tmp, ann)
    return len(annotations)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("out", type=Path, help="output folder")
    parser.add_argument("--train", type=int, default=400, help="training images")
    parser.add_argument("--val", type=int, default=50, help="validation images")
    parser.add_argument("--size", type=int, default=256, help="image side in pixels")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.size < 32 or args.train < 1 or args.val < 1:
        parser.error("need --size >= 32 and at least one train and one val image")
    for split, count in (("train", args.train), ("val", args.val)):
        n = write_split(args.out, split, count, args.size, args.seed)
        print(f"{split}: {count} images, {n} instances -> {args.out / split}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
