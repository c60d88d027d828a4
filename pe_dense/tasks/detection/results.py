"""Detection result files: one COCO *results* JSON for the whole run.

``out/results.json`` holds ``{"image_id", "category_id", "bbox": [x, y, w, h], "score",
"segmentation": RLE}`` entries (RLE of the original image size, ``counts`` as a string), which
``pycocotools``' ``COCO.loadRes`` reads unchanged. Image and category ids are those of a COCO
annotation file when the run has one (images matched by file name); otherwise ids follow the
input order (1, 2, ...), categories are 1..K in the model's class order, and ``out/images.json``
is a COCO dataset file (``images`` with ``file_name`` = the input path, ``categories``, no
annotations), so ``COCO("images.json").loadRes("results.json")`` works.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from pe_dense.tasks.results import PredictItem, ResultWriter
from pe_dense.utils.io import atomic_write_text

__all__ = ["CocoResultsWriter"]


def _numpy(pred: dict[str, Any]) -> dict[str, Any]:
    return {k: v.detach().cpu().numpy() if hasattr(v, "detach") else v for k, v in pred.items()}


def _crop_rles(crops: Sequence[Any], size: tuple[int, int]) -> Iterator[dict[str, Any]]:
    """COCO RLEs at the image ``size`` (h, w) of mask crops (``MaskCrop``: ``x0``, ``y0``,
    ``mask``), one full-size mask at a time."""
    from pycocotools import mask as mask_utils

    full = np.zeros(size, np.uint8, order="F")
    for c in crops:
        h, w = c.mask.shape
        full[c.y0:c.y0 + h, c.x0:c.x0 + w] = c.mask
        rle = mask_utils.encode(full)
        full[c.y0:c.y0 + h, c.x0:c.x0 + w] = 0
        yield {"size": [int(v) for v in rle["size"]], "counts": rle["counts"].decode("ascii")}


class CocoResultsWriter(ResultWriter):
    """``cat_ids``: COCO category id of each model label (default 1..K); ``with_masks``: write
    RLE ``segmentation`` entries when the prediction has masks; ``own_ids``: the image ids are
    the run's own (write ``images.json``)."""

    def __init__(self, out: Any, class_names: Sequence[str] | None = None, *,
                 cat_ids: Sequence[int] | None = None, with_masks: bool = True,
                 own_ids: bool = True, **options: Any) -> None:
        super().__init__(out, class_names, **options)
        self.cat_ids = list(cat_ids) if cat_ids else None
        self.with_masks, self.own_ids = with_masks, own_ids

    def _cat_ids(self, num_labels: int) -> list[int]:
        if self.cat_ids is not None:
            return self.cat_ids
        return list(range(1, max(len(self.class_names or ()), num_labels) + 1))

    def write(self, item: PredictItem, prediction: Any) -> dict[str, Any]:
        from pe_dense.evaluation.coco import coco_results

        pred = _numpy(prediction)
        labels = np.asarray(pred["labels"]).reshape(-1)
        crops = pred.pop("mask_crops", None)  # sliced inference: masks as crops
        with_masks = self.with_masks and pred.get("masks") is not None
        entries = coco_results({**pred, "image_id": item.image_id},
                               self._cat_ids(int(labels.max(initial=-1)) + 1), with_masks)
        if self.with_masks and crops is not None:
            for entry, rle in zip(entries, _crop_rles(crops, item.size), strict=True):
                entry["segmentation"] = rle
        return {"image_id": item.image_id, "detections": entries}

    def finish(self, records: Sequence[dict[str, Any]]) -> list[Path]:
        import json

        entries = [e for r in records for e in r.get("detections", ())]
        written = [atomic_write_text(self.out / "results.json", json.dumps(entries))]
        if self.own_ids:
            names = self.class_names or [f"class {i}" for i in range(len(self._cat_ids(0)))]
            cats = [{"id": int(c), "name": str(n)} for c, n in zip(self._cat_ids(len(names)),
                                                                  names, strict=False)]
            images = [{"id": r["image_id"], "file_name": r["source"],
                       "height": r["size"][0], "width": r["size"][1]} for r in records]
            dataset = {"images": images, "categories": cats, "annotations": []}
            written.append(atomic_write_text(self.out / "images.json", json.dumps(dataset)))
        return written
