"""Sliced vs whole-image detection on a large synthetic image of small known shapes.

Draws a canvas (default 4000 x 3000) textured like ``tools/make_shapes_dataset.py``'s images
(one background colour plus Gaussian noise of sd 12, shapes of a contrasting colour) with
``--shapes`` non-overlapping circles, squares and triangles of the training sizes (circumradius
6-22 % of ``--train-size``, so the detector's test resize to that size shrinks them to a few
pixels), then detects them with one trained shapes detector:

- **whole**: the image as the detector's test pipeline sees it (shrunk to its
  ``ResizeLongestSide`` size; the same input ``predict_images`` would make, with masks pasted
  at that size to spare memory), boxes scaled back;
- **sliced**: :func:`pe_dense.tasks.detection.sliced.sliced_predict` on ``--slice`` tiles
  overlapping by ``--overlap`` plus the whole pass above, with its default merging; and from
  the same detections (:class:`CachedDetect`) three variants: ``tiles_only`` (no whole
  pass), ``no_cut_drop`` (fragments cut by a tile border kept) and ``match_ios`` (greedy
  merging by intersection over the smaller box).

For each run it reports recall and precision at IoU 0.5 (class-aware, greedy by score,
detections with score >= ``--score``) and COCO bbox AP over the one image (pycocotools). It
also counts the detector's own duplicates: boxes (IoU >= 0.5 with a shape, scoring >=
``--score``) of the right and of another class when each shape is detected in one ``--slice``
crop centred on it. It writes ``OUT/sliced_recall.json`` and ``OUT/sliced_recall.png`` (a
full-resolution crop: ground truth green, whole-image detections red on the left, sliced blue
on the right). The same arguments give the same image and figures. Usage::

    python tools/sliced_recall.py CONFIG CHECKPOINT --out DIR [--cfg-options ...]
        [--seed 0] [--width 4000] [--height 3000] [--shapes 80] [--slice 256] [--overlap 0.2]
        [--score 0.5]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from pe_dense.data.det_transforms import resize_image
from pe_dense.engine.build import load_model
from pe_dense.tasks.detection.sliced import sliced_predict
from pe_dense.utils.io import atomic_path, atomic_write_text

KINDS = ("circle", "square", "triangle")  # labels 0, 1, 2 (the shapes set's category order)


def polygon(kind: str, cx: float, cy: float, r: float, angle: float) -> list[float]:
    """Flat [x0, y0, ...] outline of a shape of circumradius ``r`` (as the shapes set)."""
    n = {"circle": 32, "square": 4, "triangle": 3}[kind]
    start = angle if kind != "circle" else 0.0
    pts: list[float] = []
    for i in range(n):
        a = start + 2 * math.pi * i / n
        pts += [cx + r * math.cos(a), cy + r * math.sin(a)]
    return pts


# sliced_predict options compared (the first one, the defaults, is timed with the detector)
VARIANTS: dict[str, dict[str, Any]] = {
    "sliced": {},
    "tiles_only": {"whole": False},
    "no_cut_drop": {"drop_cut": False},
    "match_ios": {"match": "ios"},
}


class CachedDetect:
    """``detect`` that runs the detector once per distinct input (keyed by its bytes), so the
    merge variants compare the same detections."""

    def __init__(self, detect: Any) -> None:
        self.detect, self.cache = detect, {}

    def __call__(self, images: list[np.ndarray]) -> list[dict]:
        keys = [hashlib.sha1(im.tobytes()).hexdigest() + str(im.shape) for im in images]
        todo = [i for i, k in enumerate(keys) if k not in self.cache]
        if todo:
            for i, det in zip(todo, self.detect([images[i] for i in todo]), strict=True):
                self.cache[keys[i]] = det
        return [self.cache[k] for k in keys]


def make_canvas(seed: int, width: int, height: int, count: int, train_size: int
                ) -> tuple[np.ndarray, list[dict[str, Any]]]:
    """The (H, W, 3) uint8 canvas and its shapes (``kind``, ``label``, ``polygon``, ``box``)."""
    rng = np.random.default_rng(seed)
    bg = rng.integers(0, 256, 3)
    canvas = np.empty((height, width, 3), np.uint8)
    for y in range(0, height, 500):  # noise a band at a time: no full-size float array
        rows = min(500, height - y)
        canvas[y:y + rows] = np.clip(bg + rng.normal(0, 12, (rows, width, 3)), 0, 255)
    image = Image.fromarray(canvas)
    draw = ImageDraw.Draw(image)
    placed: list[tuple[float, float, float]] = []
    shapes = []
    while len(shapes) < count:
        r = float(rng.uniform(0.06, 0.22) * train_size)
        cx, cy = float(rng.uniform(r, width - r)), float(rng.uniform(r, height - r))
        if any(math.hypot(cx - x, cy - y) <= r + pr + 2 for x, y, pr in placed):
            continue
        placed.append((cx, cy, r))
        label = int(rng.integers(0, 3))
        poly = polygon(KINDS[label], cx, cy, r, float(rng.uniform(0, 2 * math.pi)))
        colour = rng.integers(0, 256, 3)
        while np.abs(colour - bg).sum() < 150:  # visible against the background
            colour = rng.integers(0, 256, 3)
        draw.polygon(poly, fill=tuple(int(c) for c in colour))
        xs, ys = poly[0::2], poly[1::2]
        shapes.append({"kind": KINDS[label], "label": label, "polygon": poly,
                       "box": [min(xs), min(ys), max(xs), max(ys)]})
    return np.array(image), shapes


def whole_image(detect: Any, image: np.ndarray, size: int) -> dict[str, np.ndarray]:
    """Detections of the image shrunk to ``size`` on its long side, in image pixels."""
    h, w = image.shape[:2]
    f = size / max(h, w)
    small = resize_image(image, (max(1, round(h * f)), max(1, round(w * f))))
    (det,) = detect([small])
    sx, sy = w / small.shape[1], h / small.shape[0]
    boxes = det["boxes"].numpy() * np.array([sx, sy, sx, sy], np.float32)
    return {"boxes": boxes, "scores": det["scores"].numpy(), "labels": det["labels"].numpy()}


def iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(N, 4) x (M, 4) xyxy -> (N, M) IoU."""
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = (rb - lt).clip(0).prod(-1)
    area = lambda x: (x[:, 2:] - x[:, :2]).clip(0).prod(-1)  # noqa: E731
    return inter / np.maximum(area(a)[:, None] + area(b)[None] - inter, 1e-9)


def recall_precision(det: dict[str, np.ndarray], gt_boxes: np.ndarray, gt_labels: np.ndarray,
                     score: float, thr: float = 0.5) -> dict[str, Any]:
    """Greedy class-aware matching by score at IoU ``thr`` of detections scoring >= ``score``."""
    keep = det["scores"] >= score
    boxes, labels = det["boxes"][keep], det["labels"][keep]
    order = np.argsort(-det["scores"][keep], kind="stable")
    matched = np.zeros(len(gt_boxes), bool)
    ious = iou(boxes, gt_boxes) if len(boxes) else np.zeros((0, len(gt_boxes)))
    tp = 0
    for i in order:
        cand = np.where(~matched & (gt_labels == labels[i]), ious[i], -1.0)
        j = int(cand.argmax()) if len(cand) else -1
        if j >= 0 and cand[j] >= thr:
            matched[j] = True
            tp += 1
    n = int(keep.sum())
    return {"score_threshold": score, "detections": n, "true_positives": tp,
            "recall": tp / len(gt_boxes), "precision": tp / n if n else None}


def centred_crop_views(detect: Any, image: np.ndarray, shapes: list[dict], size: int,
                       score: float) -> dict[str, int]:
    """The detector's own duplicates: each shape detected in a ``size`` crop centred on it
    (no tile border cuts it); boxes scoring >= ``score`` with IoU >= 0.5 with the shape,
    counted by whether their class is the shape's."""
    h, w = image.shape[:2]
    same = other = 0
    for s in shapes:
        x0, y0, x1, y1 = s["box"]
        cx = min(max(int((x0 + x1) / 2) - size // 2, 0), max(w - size, 0))
        cy = min(max(int((y0 + y1) / 2) - size // 2, 0), max(h - size, 0))
        (det,) = detect([np.ascontiguousarray(image[cy:cy + size, cx:cx + size])])
        keep = det["scores"].numpy() >= score
        boxes = det["boxes"].numpy()[keep] + np.array([cx, cy, cx, cy], np.float32)
        hits = iou(boxes, np.array([s["box"]], np.float32))[:, 0] >= 0.5
        labels = det["labels"].numpy()[keep][hits]
        same += int((labels == s["label"]).sum())
        other += int((labels != s["label"]).sum())
    return {"shapes": len(shapes), "boxes_right_class": same, "boxes_wrong_class": other}


def coco_ap(det: dict[str, Any], shapes: list[dict], size: tuple[int, int]) -> dict[str, float]:
    """COCO bbox AP / AP50 over the one image (pycocotools; up to all detections counted)."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    h, w = size
    anns = []
    for k, s in enumerate(shapes):
        x0, y0, x1, y1 = s["box"]
        anns.append({"id": k + 1, "image_id": 1, "category_id": s["label"] + 1, "iscrowd": 0,
                     "bbox": [x0, y0, x1 - x0, y1 - y0], "area": (x1 - x0) * (y1 - y0)})
    gt = COCO()
    gt.dataset = {"images": [{"id": 1, "height": h, "width": w}], "annotations": anns,
                  "categories": [{"id": i + 1, "name": n} for i, n in enumerate(KINDS)]}
    gt.createIndex()
    results = [{"image_id": 1, "category_id": int(c) + 1, "score": float(s),
                "bbox": [float(b[0]), float(b[1]), float(b[2] - b[0]), float(b[3] - b[1])]}
               for b, s, c in zip(det["boxes"], det["scores"], det["labels"], strict=True)]
    if not results:
        return {"bbox_AP": 0.0, "bbox_AP50": 0.0, "max_dets": 0}
    ev = COCOeval(gt, gt.loadRes(results), "bbox")
    ev.params.maxDets = [1, 10, max(100, len(results))]
    ev.evaluate()
    ev.accumulate()
    # precision (IoU thresholds, recall points, classes, area ranges, max dets): area "all",
    # the largest max dets (summarize() would read 100); -1 marks classes without ground truth
    prec = ev.eval["precision"][:, :, :, 0, -1]
    ap = lambda p: float(p[p > -1].mean()) if (p > -1).any() else 0.0  # noqa: E731
    return {"bbox_AP": ap(prec), "bbox_AP50": ap(prec[0]), "max_dets": ev.params.maxDets[-1]}


def draw(image: np.ndarray, shapes: list[dict], whole: dict, sliced: dict, score: float,
         path: Path, crop: int = 900) -> None:
    """Two panels of the same full-resolution crop (the densest ``crop`` square): ground truth
    green + whole-image detections red | ground truth green + sliced detections blue."""
    centres = np.array([[(s["box"][0] + s["box"][2]) / 2, (s["box"][1] + s["box"][3]) / 2]
                        for s in shapes])
    h, w = image.shape[:2]
    best, corner = -1, (0, 0)
    for y in range(0, max(1, h - crop + 1), 100):
        for x in range(0, max(1, w - crop + 1), 100):
            n = int(((centres >= [x, y]) & (centres < [x + crop, y + crop])).all(1).sum())
            if n > best:
                best, corner = n, (x, y)
    x0, y0 = corner
    panels = []
    for det, colour, title in ((whole, (255, 0, 0), "whole image"),
                               (sliced, (0, 90, 255), "sliced")):
        panel = Image.fromarray(image[y0:y0 + crop, x0:x0 + crop].copy())
        d = ImageDraw.Draw(panel)
        for s in shapes:
            b = np.array(s["box"]) - [x0, y0, x0, y0]
            d.rectangle(b.tolist(), outline=(0, 200, 0), width=2)
        for b, sc in zip(det["boxes"], det["scores"], strict=True):
            if sc >= score:
                d.rectangle((b - [x0, y0, x0, y0]).tolist(), outline=colour, width=3)
        d.rectangle([0, 0, crop, 22], fill=(0, 0, 0))
        d.text((6, 3), f"{title}: detections scoring >= {score} (ground truth green); "
               f"crop at ({x0}, {y0}) of {w}x{h}", fill=(255, 255, 255),
               font=ImageFont.load_default(size=16))
        panels.append(panel)
    out = Image.new("RGB", (2 * crop + 10, crop), (255, 255, 255))
    out.paste(panels[0], (0, 0))
    out.paste(panels[1], (crop + 10, 0))
    with atomic_path(path) as tmp:
        out.save(tmp)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config")
    parser.add_argument("checkpoint")
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    parser.add_argument("--cfg-options", nargs="*", default=None, help="config overrides")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--width", type=int, default=4000)
    parser.add_argument("--height", type=int, default=3000)
    parser.add_argument("--shapes", type=int, default=80, help="shapes on the canvas")
    parser.add_argument("--train-size", type=int, default=256,
                        help="image size of the shapes set the detector was trained on")
    parser.add_argument("--slice", type=int, default=256, help="tile size (pixels)")
    parser.add_argument("--overlap", type=float, default=0.2)
    parser.add_argument("--score", type=float, default=0.5,
                        help="score threshold for recall / precision and the picture")
    parser.add_argument("--max-detections", type=int, default=300)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    loaded = load_model(args.config, args.checkpoint, args.device, args.cfg_options)
    model = loaded.model
    size = model.inputs.resize or args.train_size
    image, shapes = make_canvas(args.seed, args.width, args.height, args.shapes,
                                args.train_size)
    gt_boxes = np.array([s["box"] for s in shapes], np.float32)
    gt_labels = np.array([s["label"] for s in shapes])

    t = time.perf_counter()
    whole = whole_image(model.predict_images, image, size)
    runs, seconds = {"whole": whole}, {"whole": time.perf_counter() - t}
    detect = CachedDetect(model.predict_images)
    for name, options in VARIANTS.items():  # the first runs the detector, the rest reuse it
        t = time.perf_counter()
        runs[name] = sliced_predict(detect, image, args.slice, args.overlap,
                                    max_detections=args.max_detections, whole_size=size,
                                    mask_format="crops", **options)
        seconds[name] = time.perf_counter() - t
    report: dict[str, Any] = {
        "command": " ".join([Path(sys.argv[0]).name, *(argv if argv is not None
                                                         else sys.argv[1:])]),
        "config": args.config, "checkpoint": args.checkpoint,
        "image": {"width": args.width, "height": args.height, "seed": args.seed,
                  "shapes": len(shapes), "whole_input_long_side": size,
                  "shape_circumradius_px": [0.06 * args.train_size, 0.22 * args.train_size]},
        "sliced_options": {"slice": args.slice, "overlap": args.overlap,
                           "max_detections": args.max_detections,
                           "variants": {k: v or "defaults" for k, v in VARIANTS.items()}},
        "seconds_note": "sliced: detector on every tile and the whole image plus merging; the "
                        "other variants reuse those detections (merging only)",
        **{name: {"seconds": round(seconds[name], 2)} for name in runs},
        "machine": {"host": platform.node(), "cpus": os.cpu_count(),
                    "torch_threads": torch.get_num_threads(),
                    "load_average_1_5_15": [round(v, 2) for v in os.getloadavg()]},
    }
    for name, det in runs.items():
        report[name]["at_score"] = recall_precision(det, gt_boxes, gt_labels, args.score)
        report[name]["any_score"] = recall_precision(det, gt_boxes, gt_labels, 0.0)
        report[name]["coco"] = coco_ap(det, shapes, image.shape[:2])
    report["centred_crops"] = centred_crop_views(model.predict_images, image, shapes,
                                                 args.slice, args.score)
    args.out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(args.out / "sliced_recall.json", json.dumps(report, indent=2) + "\n")
    draw(image, shapes, whole, runs["sliced"], args.score, args.out / "sliced_recall.png")
    for name in runs:
        r = report[name]
        prec = r["at_score"]["precision"]
        print(f"{name:14s} recall@0.5 {r['at_score']['recall']:.3f} precision "
              f"{'-' if prec is None else f'{prec:.3f}'} (score >= {args.score}; any score: recall "
              f"{r['any_score']['recall']:.3f}) bbox AP {r['coco']['bbox_AP']:.3f} "
              f"({r['seconds']} s)")
    print(f"one {args.slice} px crop centred on each shape: {report['centred_crops']}")
    print(f"-> {args.out / 'sliced_recall.json'}, {args.out / 'sliced_recall.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
