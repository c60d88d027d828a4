"""COCO box / mask AP through pycocotools' COCOeval (the engine's metric ``"CocoMetric"``).

:class:`CocoEvaluator` (plain Python, no mmengine): ``process_one`` turns each image's predictions
into COCO result entries (category ids restored, masks RLE-encoded); ``evaluate`` writes
``<outfile_dir>/results.<bbox|segm>.json`` atomically, runs COCOeval on the evaluated images
and returns ``bbox_AP``, ``bbox_AP50``, ``bbox_AP75``, ``bbox_APs``, ``bbox_APm``, ``bbox_APl``
(and ``segm_*``), logging a table.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from pe_dense.utils.coco import load_coco_json
from pe_dense.utils.io import atomic_write_text

__all__ = ["CocoEvaluator", "coco_results", "evaluate_coco", "format_table"]

log = logging.getLogger(__name__)

STATS = ("AP", "AP50", "AP75", "APs", "APm", "APl")


def coco_results(pred: dict[str, Any], cat_ids: Sequence[int], with_masks: bool
                 ) -> list[dict[str, Any]]:
    """One image's prediction (``boxes`` xyxy, ``scores``, ``labels`` 0-based, ``masks``) ->
    COCO result dicts with ``bbox`` xywh and, if ``with_masks``, an RLE ``segmentation``."""
    from pycocotools import mask as mask_utils

    boxes = np.asarray(pred["boxes"], dtype=np.float64).reshape(-1, 4)
    scores = np.asarray(pred["scores"], dtype=np.float64).reshape(-1)
    labels = np.asarray(pred["labels"]).reshape(-1)
    if labels.size and (labels.min() < 0 or labels.max() >= len(cat_ids)):
        raise ValueError(f"predicted label {int(labels.max())} is outside the {len(cat_ids)} "
                         "dataset categories; does the model's num_classes match the data?")
    rles = []
    if with_masks and len(boxes):
        masks = np.asarray(pred["masks"], dtype=np.uint8)
        rles = mask_utils.encode(np.asfortranarray(masks.transpose(1, 2, 0)))
    out = []
    for i, (box, score, label) in enumerate(zip(boxes, scores, labels, strict=True)):
        entry = {"image_id": int(pred["image_id"]), "category_id": int(cat_ids[int(label)]),
                 "bbox": [float(box[0]), float(box[1]), float(box[2] - box[0]),
                          float(box[3] - box[1])], "score": float(score)}
        if rles:
            rle = dict(rles[i])
            rle["counts"] = rle["counts"].decode("ascii")
            entry["segmentation"] = rle
        out.append(entry)
    return out


def evaluate_coco(ann_file: str | os.PathLike, results: list[dict[str, Any]], iou_type: str,
                  image_ids: Sequence[int] | None = None) -> dict[str, float]:
    """COCOeval of ``results`` against ``ann_file`` -> ``{"AP": ..., "AP50": ..., ...}`` in [0, 1]
    (-1 where COCO finds no ground truth of that size)."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(str(ann_file))
    if not results:
        log.warning("no %s predictions at all: AP is 0", iou_type)
        return dict.fromkeys(STATS, 0.0)
    with contextlib.redirect_stdout(io.StringIO()) as buf:
        dt = gt.loadRes([dict(r) for r in results])
        ev = COCOeval(gt, dt, iou_type)
        if image_ids is not None:
            ev.params.imgIds = sorted(set(int(i) for i in image_ids))
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    log.debug("COCOeval %s:\n%s", iou_type, buf.getvalue())
    return {name: float(ev.stats[i]) for i, name in enumerate(STATS)}


def format_table(metrics: dict[str, dict[str, float]]) -> str:
    """``{"bbox": {"AP": ...}, ...}`` -> a fixed-width table in percent."""
    head = "type  " + "".join(f"{s:>8}" for s in STATS)
    rows = [f"{t:<6}" + "".join(f"{100 * v[s]:8.2f}" for s in STATS) for t, v in metrics.items()]
    return "\n".join([head, *rows])


class CocoEvaluator:
    """COCO AP of ``MaskRCNN`` predictions (plain; the engine's ``CocoMetric`` wraps it).

    ``ann_file``: the ground-truth JSON of the evaluated split; ``metric``: ``"bbox"`` and/or
    ``"segm"``; ``outfile_dir``: where results JSONs go (nothing is written when None).
    Use: ``results = [evaluator.process_one(pred) for pred in predictions]``, then
    ``evaluator.evaluate(results)``.
    """

    def __init__(self, ann_file: str | os.PathLike, metric: str | Sequence[str] = ("bbox", "segm"),
                 outfile_dir: str | os.PathLike | None = None) -> None:
        self.iou_types = [metric] if isinstance(metric, str) else list(metric)
        bad = [m for m in self.iou_types if m not in ("bbox", "segm")]
        if bad or not self.iou_types:
            raise ValueError(f"metric {bad or metric!r}: choose 'bbox' and/or 'segm'")
        self.ann_file = str(ann_file)
        self.cat_ids = [c["id"] for c in sorted(load_coco_json(ann_file)["categories"],
                                                key=lambda c: c["id"])]
        self.outfile_dir = outfile_dir

    def process_one(self, pred: dict[str, Any]) -> tuple[int, list[dict[str, Any]]]:
        """One image's prediction -> ``(image_id, COCO result entries)``."""
        return int(pred["image_id"]), coco_results(pred, self.cat_ids, "segm" in self.iou_types)

    def evaluate(self, results: Sequence[tuple[int, list[dict[str, Any]]]]) -> dict[str, float]:
        """``process_one`` outputs of the whole split -> ``{"bbox_AP": ..., "segm_AP50": ...}``;
        writes ``results.<type>.json`` to ``outfile_dir`` and logs a table."""
        image_ids = [i for i, _ in results]
        entries = [e for _, es in results for e in es]
        table, out = {}, {}
        for iou_type in self.iou_types:
            typed = [e for e in entries if iou_type == "bbox" or "segmentation" in e]
            if iou_type == "bbox":
                typed = [{k: v for k, v in e.items() if k != "segmentation"} for e in typed]
            self._write(iou_type, typed)
            stats = evaluate_coco(self.ann_file, typed, iou_type, image_ids)
            table[iou_type] = stats
            out.update({f"{iou_type}_{k}": v for k, v in stats.items()})
        log.info("COCO evaluation on %d images:\n%s", len(image_ids), format_table(table))
        return out

    def _write(self, iou_type: str, entries: list[dict[str, Any]]) -> None:
        if not self.outfile_dir:
            return
        atomic_write_text(Path(self.outfile_dir) / f"results.{iou_type}.json", json.dumps(entries))
