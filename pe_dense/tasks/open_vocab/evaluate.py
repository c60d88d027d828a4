"""Scoring text-prompted label maps against ground truth, beside an image-independent baseline.

Ground truth: one single-channel label PNG per image, paired by file stem
(:func:`pair_labels`), class index ``i`` = the ``i``-th output class of the segmenter (its
``class_names``: the prompts in order, with a bridge's ``"background"`` first), ``ignore_index``
not scored. The metrics are :class:`~pe_dense.evaluation.segmentation.SegmentationEvaluator`'s
(mmseg definitions, areas summed over the dataset, percent): per-class ``IoU``, ``mIoU``,
``aAcc`` (pixel accuracy) and ``mAcc``.

Baseline: the best label map that looks at no image, i.e. per pixel position the most frequent
ground-truth class over the evaluated images (labels brought to the first label's size with
nearest neighbours; ties go to the lower class index; a position that is ignored in every label
takes the most frequent class overall). It is resized (nearest) to each label and scored with the
same evaluator, so a model's ``mIoU`` reads against what the label statistics alone give.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from pe_dense.data.segmentation import read_label
from pe_dense.evaluation.segmentation import SegmentationEvaluator

__all__ = ["pair_labels", "TextMapScorer", "format_summary"]

log = logging.getLogger(__name__)


def pair_labels(images: Sequence[str | os.PathLike], label_dir: str | os.PathLike) -> list[Path]:
    """``label_dir/<stem>.png`` for every image, in order; a ``FileNotFoundError`` names the
    first missing label (and how many are missing)."""
    folder = Path(label_dir)
    if not folder.is_dir():
        raise FileNotFoundError(f"label folder {folder} does not exist (--eval-labels)")
    paths = [folder / f"{Path(p).stem}.png" for p in images]
    missing = [(img, p) for img, p in zip(images, paths, strict=True) if not p.is_file()]
    if missing:
        img, p = missing[0]
        raise FileNotFoundError(f"no ground-truth label {p} for image {img} ({len(missing)} of "
                                f"{len(paths)} images have none): labels are paired with images "
                                "by file stem, as <stem>.png")
    return paths


def _resize_nearest(label: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """(H, W) integer map -> (h, w), nearest neighbours (as mmseg resizes label maps)."""
    if tuple(label.shape) == tuple(size):
        return label
    return F.interpolate(label[None, None].float(), size=size, mode="nearest")[0, 0].long()


class TextMapScorer:
    """Accumulates predicted label maps against ground-truth files, and the baseline's counts.

    >>> scorer = TextMapScorer(model.class_names, ignore_index=255)
    >>> scorer.update(pred, "labels/00000.png")   # pred: (H, W) integer class map
    >>> scorer.compute()["metrics"]["mIoU"]

    ``class_names``: the segmenter's output classes in index order (named in errors and in the
    per-class IoU). Per-position class counts are kept at the first label's size (K x h x w
    int64).
    """

    def __init__(self, class_names: Sequence[str], ignore_index: int = 255) -> None:
        self.class_names = tuple(class_names)
        self.ignore_index = ignore_index
        self.evaluator = SegmentationEvaluator(len(self.class_names), ignore_index,
                                               self.class_names)
        self.label_paths: list[Path] = []
        self.counts: torch.Tensor | None = None  # (K, h, w) ground-truth class per position

    def read(self, path: str | os.PathLike) -> torch.Tensor:
        """The (H, W) int64 label map of ``path``; a ``ValueError`` names the file and the values
        that are not a class index (``>= K`` and not the ignore index) and lists the classes."""
        label = read_label(path)
        k = len(self.class_names)
        bad = (label != self.ignore_index) & ((label < 0) | (label >= k))
        if bad.any():
            values = np.unique(label[bad])[:8].tolist()
            classes = ", ".join(f"{i} {n}" for i, n in enumerate(self.class_names))
            raise ValueError(f"label {path} has value(s) {values}, but only {k} classes were "
                             f"given ({classes}) and the ignore index is {self.ignore_index}: "
                             "give one prompt per class index in the labels, or set "
                             "--ignore-index")
        return torch.from_numpy(label)

    def update(self, pred: np.ndarray | torch.Tensor, label_path: str | os.PathLike) -> None:
        """pred: (H, W) integer class map of the image whose ground truth is ``label_path``."""
        label = self.read(label_path)
        pred = torch.as_tensor(pred)
        if tuple(pred.shape) != tuple(label.shape):
            raise ValueError(f"label {label_path} is {label.shape[1]}x{label.shape[0]} but the "
                             f"prediction for its image is {pred.shape[1]}x{pred.shape[0]}: the "
                             "label must have the image's size")
        self.evaluator.update(pred, label)
        self.label_paths.append(Path(label_path))
        self._count(label)

    def _count(self, label: torch.Tensor) -> None:
        k = len(self.class_names)
        if self.counts is None:
            self.counts = torch.zeros(k, *label.shape, dtype=torch.int64)
        size = tuple(self.counts.shape[1:])
        flat = _resize_nearest(label, size).reshape(-1)
        keep = flat != self.ignore_index
        positions = torch.arange(flat.numel())[keep]
        self.counts += torch.bincount(flat[keep] * flat.numel() + positions,
                                      minlength=k * flat.numel()).view(k, *size)

    def baseline_map(self) -> torch.Tensor:
        """(h, w) int64: per position the most frequent ground-truth class so far."""
        if self.counts is None:
            raise RuntimeError("no images were evaluated: call update() first")
        best = self.counts.argmax(0)
        empty = self.counts.sum(0) == 0
        return torch.where(empty, self.counts.sum((1, 2)).argmax(), best)

    def baseline_metrics(self) -> dict[str, float | np.ndarray]:
        """The baseline map scored on every label seen (re-read from its file)."""
        baseline = self.baseline_map()
        evaluator = SegmentationEvaluator(len(self.class_names), self.ignore_index)
        for path in self.label_paths:
            label = self.read(path)
            evaluator.update(_resize_nearest(baseline, tuple(label.shape)), label)
        return evaluator.compute()

    def compute(self) -> dict:
        """``{"num_images", "metrics", "baseline"}``; each metrics dict holds ``mIoU``,
        ``aAcc`` (pixel accuracy), ``mAcc`` (percent) and ``IoU`` per class name (None for a
        class absent from labels and predictions); ``baseline`` adds ``size`` [h, w]."""
        model = self._named(self.evaluator.compute())
        baseline = self._named(self.baseline_metrics())
        baseline["size"] = list(self.counts.shape[1:])
        return {"num_images": self.evaluator.num_images, "metrics": model, "baseline": baseline}

    def _named(self, m: dict) -> dict:
        def num(v: float) -> float | None:
            return None if math.isnan(v) else round(float(v), 4)

        out = {k: num(m[k]) for k in ("mIoU", "aAcc", "mAcc")}
        out["IoU"] = {n: num(v) for n, v in zip(self.class_names, m["IoU"], strict=True)}
        return out


def format_summary(result: dict) -> str:
    """One line: the model's mIoU and pixel accuracy beside the baseline's."""
    m, b = result["metrics"], result["baseline"]

    def pct(v: float | None) -> str:
        return "n/a" if v is None else f"{v:.2f}"

    ratio = (f" ({m['mIoU'] / b['mIoU']:.2f}x)" if m["mIoU"] is not None and b["mIoU"]
             else "")
    return (f"{result['num_images']} images, {len(m['IoU'])} classes: mIoU {pct(m['mIoU'])}"
            f"{ratio} vs image-independent baseline {pct(b['mIoU'])}; pixel accuracy "
            f"{pct(m['aAcc'])} vs {pct(b['aAcc'])}")
