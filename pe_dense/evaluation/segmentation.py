"""Semantic-segmentation metrics with mmsegmentation's exact definitions.

Per image, pixels whose label is ``ignore_index`` are dropped and the areas of intersection,
prediction, label and union are counted per class. Areas are **summed over the whole
dataset**; then per class ``IoU = sum(I) / sum(U)`` and ``Acc = sum(I) / sum(label)``, and
``mIoU`` / ``mAcc`` are the NaN-mean over classes (classes with no label and no prediction
are NaN and excluded). ``aAcc = sum(I) / sum(label)`` over all classes. Values are reported
in percent, as mmseg does (``IoUMetric`` rounds to 2 decimals; here rounding is the caller's).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

__all__ = ["intersect_and_union", "image_areas", "areas_to_metrics", "summarize_areas",
           "SegmentationEvaluator"]

log = logging.getLogger(__name__)


def intersect_and_union(pred: torch.Tensor, label: torch.Tensor, num_classes: int,
                        ignore_index: int = 255) -> tuple[torch.Tensor, ...]:
    """Per-class areas for one image.

    pred, label: (H, W) integer class maps of the same size. Labels equal to ``ignore_index``
    are not counted; any other label outside ``0..num_classes-1`` is an error (mmseg's
    histogram would silently drop it). Returns four (num_classes,) float64 tensors:
    intersection, union, prediction area, label area.
    """
    if pred.shape != label.shape:
        raise ValueError(f"prediction {tuple(pred.shape)} and label {tuple(label.shape)} differ "
                         "in size: resize the prediction to the label first")
    label = label.long()
    pred = pred.long()
    keep = label != ignore_index
    pred, label = pred[keep], label[keep]
    if label.numel():
        lo, hi = int(label.min()), int(label.max())
        if lo < 0 or hi >= num_classes:
            raise ValueError(f"label values {lo}..{hi} outside 0..{num_classes - 1} (ignore "
                             f"index {ignore_index}): check num_classes / reduce_zero_label")
    if pred.numel() and (int(pred.min()) < 0 or int(pred.max()) >= num_classes):
        raise ValueError(f"prediction values outside 0..{num_classes - 1}")
    inter = torch.bincount(label[pred == label], minlength=num_classes).double()
    area_pred = torch.bincount(pred, minlength=num_classes).double()
    area_label = torch.bincount(label, minlength=num_classes).double()
    return inter, area_pred + area_label - inter, area_pred, area_label


def image_areas(pred: torch.Tensor, label: torch.Tensor, num_classes: int,
                ignore_index: int = 255) -> torch.Tensor:
    """:func:`intersect_and_union` of one image stacked: (4, num_classes) float64 rows
    intersection, union, prediction area, label area (what a dataset total sums)."""
    return torch.stack(intersect_and_union(pred.cpu(), label.cpu(), num_classes, ignore_index))


def areas_to_metrics(inter: torch.Tensor, union: torch.Tensor, area_pred: torch.Tensor,
                     area_label: torch.Tensor) -> dict[str, float | np.ndarray]:
    """Dataset totals (num_classes,) -> ``aAcc``, ``mIoU``, ``mAcc`` in percent, plus the
    per-class arrays ``IoU`` and ``Acc`` in percent (NaN for classes absent from labels and
    predictions, resp. from labels)."""
    inter, union = inter.double().numpy(), union.double().numpy()
    area_label = area_label.double().numpy()
    with np.errstate(divide="ignore", invalid="ignore"):
        iou = inter / union
        acc = inter / area_label
        aacc = inter.sum() / area_label.sum()
    return {
        "aAcc": float(aacc * 100),
        "mIoU": float(np.nanmean(iou) * 100) if np.isfinite(iou).any() else float("nan"),
        "mAcc": float(np.nanmean(acc) * 100) if np.isfinite(acc).any() else float("nan"),
        "IoU": iou * 100,
        "Acc": acc * 100,
    }


def summarize_areas(areas: Sequence[torch.Tensor],
                    class_names: Sequence[str] | None = None) -> dict[str, float]:
    """Per-image :func:`image_areas` -> ``{"aAcc", "mIoU", "mAcc"}`` in percent rounded to 2
    decimals (mmseg's ``IoUMetric``); the per-class IoU goes to the log (info level)."""
    if not len(areas):
        raise RuntimeError("no images were evaluated: the split is empty")
    inter, union, area_pred, area_label = torch.stack(list(areas)).sum(0)
    m = areas_to_metrics(inter, union, area_pred, area_label)
    names = class_names or [str(i) for i in range(len(inter))]
    table = ", ".join(f"{n} {v:.2f}" for n, v in zip(names, m["IoU"], strict=False)
                      if not math.isnan(v))
    log.info("per-class IoU: %s", table)
    return {k: round(float(m[k]), 2) for k in ("aAcc", "mIoU", "mAcc")}


@dataclass
class SegmentationEvaluator:
    """Accumulates areas image by image; ``compute()`` gives the dataset-level metrics.

    >>> ev = SegmentationEvaluator(num_classes=11, ignore_index=11)
    >>> ev.update(pred, label)   # (H, W) or (B, H, W) integer maps
    >>> ev.compute()["mIoU"]
    """

    num_classes: int
    ignore_index: int = 255
    class_names: tuple[str, ...] | None = None
    totals: torch.Tensor = field(init=False)
    num_images: int = field(init=False, default=0)

    def __post_init__(self) -> None:
        if self.num_classes < 1:
            raise ValueError(f"num_classes must be >= 1, got {self.num_classes}")
        self.reset()

    def reset(self) -> None:
        self.totals = torch.zeros(4, self.num_classes, dtype=torch.float64)
        self.num_images = 0

    def update(self, pred: torch.Tensor, label: torch.Tensor) -> None:
        """pred, label: (H, W) or (B, H, W) integer class maps."""
        if pred.ndim == 2:
            pred, label = pred[None], label[None]
        for p, lab in zip(pred, label, strict=True):
            self.totals += image_areas(p, lab, self.num_classes, self.ignore_index)
            self.num_images += 1

    def compute(self) -> dict[str, float | np.ndarray]:
        if self.num_images == 0:
            raise RuntimeError("no images were evaluated: the split is empty")
        inter, union, area_pred, area_label = self.totals
        return areas_to_metrics(inter, union, area_pred, area_label)

    def table(self) -> str:
        """Per-class IoU / Acc as a plain-text table (for logs)."""
        m = self.compute()
        names = self.class_names or tuple(str(i) for i in range(self.num_classes))
        rows = [f"{'class':<16}{'IoU':>8}{'Acc':>8}"]
        for name, iou, acc in zip(names, m["IoU"], m["Acc"], strict=False):
            rows.append(f"{name[:16]:<16}{iou:8.2f}{acc:8.2f}")
        rows.append(f"aAcc {m['aAcc']:.2f}  mIoU {m['mIoU']:.2f}  mAcc {m['mAcc']:.2f}")
        return "\n".join(rows)
