"""DAVIS J&F, computed as the DAVIS-2017 semi-supervised evaluation does.

Reproduces ``davisvideochallenge/davis2017-evaluation`` (``--task semi-supervised``):

* J (region similarity): IoU of one object's masks per frame; an empty union counts as 1.
* F (contour accuracy): boundary F-measure per frame. Boundaries are pixels differing from their
  east, south or south-east neighbour (last row: east only; last column: south only); a boundary
  pixel matches when the other boundary lies within a disk of radius
  ``ceil(0.008 * hypot(H, W))`` pixels. Both boundaries empty: P = R = 1; prediction empty:
  P = 1, R = 0; ground truth empty: P = 0, R = 1; F = 2PR / (P + R), 0 when P + R = 0.
* The first and last frames are excluded; the number of objects is the highest id of the
  first ground-truth mask; ids above it in a prediction are an error; void (255) ground-truth
  pixels count as background (the semi-supervised task passes no void mask).
* Per object: Mean = nanmean over frames, Recall = fraction of frames > 0.5,
  Decay = mean of the first quarter bin minus mean of the last (4 overlapping bins with edges
  ``round(linspace(1, n, 5)) - 1``). The official code casts the bin edges to uint8, which wraps
  past 256 frames; here they are plain integers (identical for DAVIS-length videos).
* Global: J-Mean, F-Mean, ... are means over all objects of all sequences;
  J&F-Mean = (J-Mean + F-Mean) / 2. The official "per-sequence" table has one row per object
  (``<seq>_<id>``); ``sequence_means`` additionally averages each sequence's objects.
"""

from __future__ import annotations

import csv
import math
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

__all__ = [
    "region_similarity", "boundary_map", "boundary_f_measure", "statistics", "ObjectScore",
    "SequenceScorer", "evaluate_sequence", "summarize", "sequence_means", "write_results_csv",
    "write_global_csv", "write_sequence_csv", "BOUND_TH",
]

BOUND_TH = 0.008


def region_similarity(gt: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """J per frame. gt, pred: (T, H, W) bool (or (H, W)). Returns (T,) IoU, 1 where both empty."""
    gt, pred = np.asarray(gt, bool), np.asarray(pred, bool)
    axes = (-2, -1)
    inter = (gt & pred).sum(axis=axes)
    union = (gt | pred).sum(axis=axes)
    with np.errstate(divide="ignore", invalid="ignore"):
        j = inter / union
    return np.where(union == 0, 1.0, j)


def boundary_map(mask: np.ndarray) -> np.ndarray:
    """(H, W) bool mask -> (H, W) bool one-pixel boundary (the DAVIS ``seg2bmap`` rule)."""
    seg = np.asarray(mask, bool)
    east = np.zeros_like(seg)
    south = np.zeros_like(seg)
    south_east = np.zeros_like(seg)
    east[:, :-1] = seg[:, 1:]
    south[:-1, :] = seg[1:, :]
    south_east[:-1, :-1] = seg[1:, 1:]
    b = (seg ^ east) | (seg ^ south) | (seg ^ south_east)
    b[-1, :] = seg[-1, :] ^ east[-1, :]
    b[:, -1] = seg[:, -1] ^ south[:, -1]
    b[-1, -1] = False
    return b


def _disk(radius: int) -> np.ndarray:
    r = np.arange(-radius, radius + 1)
    return (r[:, None] ** 2 + r[None, :] ** 2 <= radius ** 2).astype(np.float32)


def _dilate(mask: np.ndarray, radius: int) -> np.ndarray:
    """Binary dilation of an (H, W) bool map by a disk (pixels outside the image count as 0).

    The disk is a stack of horizontal runs, so the dilation is an OR of row-shifted 1-D
    dilations (window sums from a cumulative sum), done inside the mask's bounding box.
    """
    out = np.zeros(mask.shape, bool)
    ys, xs = np.nonzero(mask)
    if ys.size == 0:
        return out
    y0, y1 = max(ys.min() - radius, 0), min(ys.max() + radius + 1, mask.shape[0])
    x0, x1 = max(xs.min() - radius, 0), min(xs.max() + radius + 1, mask.shape[1])
    crop = mask[y0:y1, x0:x1]
    h, w = crop.shape
    sums = np.pad(crop.astype(np.int32), ((0, 0), (radius + 1, radius))).cumsum(1)
    runs: dict[int, np.ndarray] = {}
    disk = _disk(radius)
    region = out[y0:y1, x0:x1]
    for row in range(2 * radius + 1):
        half = int(np.nonzero(disk[row])[0].max()) - radius  # half-width of this disk row
        if half not in runs:
            runs[half] = (sums[:, radius + 1 + half:radius + 1 + half + w]
                          - sums[:, radius - half:radius - half + w]) > 0
        dy = row - radius  # output pixel y sees input pixel y + dy
        if abs(dy) >= h:
            continue
        if dy >= 0:
            region[:h - dy] |= runs[half][dy:]
        else:
            region[-dy:] |= runs[half][:h + dy]
    return out


def boundary_f_measure(gt: np.ndarray, pred: np.ndarray, bound_th: float = BOUND_TH) -> float:
    """F for one frame: gt, pred (H, W) bool. ``bound_th`` < 1 is a fraction of the diagonal."""
    gt, pred = np.asarray(gt, bool), np.asarray(pred, bool)
    if gt.shape != pred.shape:
        raise ValueError(f"prediction {pred.shape} and ground truth {gt.shape} differ in size")
    radius = int(bound_th if bound_th >= 1 else math.ceil(bound_th * math.hypot(*gt.shape)))
    pred_b, gt_b = boundary_map(pred), boundary_map(gt)
    n_pred, n_gt = int(pred_b.sum()), int(gt_b.sum())
    if n_pred == 0 and n_gt == 0:
        precision = recall = 1.0
    elif n_pred == 0:
        precision, recall = 1.0, 0.0
    elif n_gt == 0:
        precision, recall = 0.0, 1.0
    else:
        precision = float((pred_b & _dilate(gt_b, radius)).sum()) / n_pred
        recall = float((gt_b & _dilate(pred_b, radius)).sum()) / n_gt
    if precision + recall == 0:
        return 0.0
    return 2 * precision * recall / (precision + recall)


def statistics(values: Sequence[float]) -> tuple[float, float, float]:
    """Per-frame values of one object -> (Mean, Recall, Decay) as DAVIS defines them."""
    v = np.asarray(values, dtype=np.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=RuntimeWarning)
        mean = float(np.nanmean(v))
        recall = float(np.nanmean(v > 0.5))
        edges = (np.round(np.linspace(1, len(v), 5) + 1e-10) - 1).astype(int)
        bins = [v[edges[i]:edges[i + 1] + 1] for i in range(4)]
        decay = float(np.nanmean(bins[0]) - np.nanmean(bins[3]))
    return mean, recall, decay


@dataclass
class ObjectScore:
    """J and F statistics of one object of one sequence (one row of ``results.csv``)."""

    sequence: str
    object_id: int
    j_mean: float
    j_recall: float
    j_decay: float
    f_mean: float
    f_recall: float
    f_decay: float

    @property
    def jf_mean(self) -> float:
        return (self.j_mean + self.f_mean) / 2


class SequenceScorer:
    """Accumulates J and F of one sequence frame by frame (bounded memory for long videos).

    name: sequence name; num_frames: its length (the first and last frames are skipped);
    first_gt: (H, W) ids of the first ground-truth mask, which fixes the number of objects.
    """

    def __init__(self, name: str, num_frames: int, first_gt: np.ndarray,
                 bound_th: float = BOUND_TH) -> None:
        if num_frames < 3:
            raise ValueError(f"sequence {name}: J&F needs at least 3 frames (first and last are "
                             f"excluded), got {num_frames}")
        first = np.asarray(first_gt)
        self.name, self.num_frames, self.bound_th = name, num_frames, bound_th
        self.num_objects = int(np.where(first == 255, 0, first).max(initial=0))
        self.size = first.shape
        self.j: list[list[float]] = [[] for _ in range(self.num_objects)]
        self.f: list[list[float]] = [[] for _ in range(self.num_objects)]
        self._next = 0

    def add(self, gt: np.ndarray, pred: np.ndarray) -> None:
        """Frame ``t`` (in order): gt and pred (H, W) integer ids; void (255) gt is background."""
        t, self._next = self._next, self._next + 1
        if t >= self.num_frames:
            raise ValueError(f"sequence {self.name}: more than {self.num_frames} frames added")
        if t == 0 or t == self.num_frames - 1:
            return
        gt, pred = np.asarray(gt), np.asarray(pred)
        if gt.shape != self.size or pred.shape != self.size:
            raise ValueError(f"sequence {self.name}, frame {t}: ground truth {gt.shape} and "
                             f"prediction {pred.shape} must both be {self.size} (H, W)")
        if pred.max(initial=0) > self.num_objects:
            raise ValueError(f"sequence {self.name}, frame {t}: prediction holds id "
                             f"{int(pred.max())} but the first ground-truth mask has "
                             f"{self.num_objects} objects")
        gt = np.where(gt == 255, 0, gt)
        for obj in range(1, self.num_objects + 1):
            g, p = gt == obj, pred == obj
            self.j[obj - 1].append(float(region_similarity(g, p)))
            self.f[obj - 1].append(boundary_f_measure(g, p, self.bound_th))

    def scores(self) -> list[ObjectScore]:
        """One score per object; every frame must have been added."""
        if self._next != self.num_frames:
            raise ValueError(f"sequence {self.name}: {self._next} of {self.num_frames} frames "
                             "were scored")
        return [ObjectScore(self.name, i + 1, *statistics(self.j[i]), *statistics(self.f[i]))
                for i in range(self.num_objects)]


def evaluate_sequence(name: str, gt: Sequence[np.ndarray], pred: Sequence[np.ndarray],
                      bound_th: float = BOUND_TH) -> list[ObjectScore]:
    """Score one sequence. gt, pred: per-frame (H, W) integer id maps, all frames (the first and
    last are dropped here, as in the semi-supervised protocol). Returns one score per object."""
    if len(gt) != len(pred):
        raise ValueError(f"sequence {name}: {len(pred)} predicted frames for {len(gt)} "
                         "ground-truth frames")
    scorer = SequenceScorer(name, len(gt), gt[0], bound_th)
    for g, p in zip(gt, pred, strict=True):
        scorer.add(g, p)
    return scorer.scores()


def summarize(scores: Sequence[ObjectScore]) -> dict[str, float]:
    """Global DAVIS numbers: means over all objects of all sequences."""
    if not scores:
        raise ValueError("no object scores to summarise")
    keys = ["j_mean", "j_recall", "j_decay", "f_mean", "f_recall", "f_decay"]
    means = {k: float(np.mean([getattr(s, k) for s in scores])) for k in keys}
    return {"J&F-Mean": (means["j_mean"] + means["f_mean"]) / 2,
            "J-Mean": means["j_mean"], "J-Recall": means["j_recall"], "J-Decay": means["j_decay"],
            "F-Mean": means["f_mean"], "F-Recall": means["f_recall"], "F-Decay": means["f_decay"],
            "objects": len(scores), "sequences": len({s.sequence for s in scores})}


def sequence_means(scores: Sequence[ObjectScore]) -> dict[str, dict[str, float]]:
    """{sequence: {"J-Mean", "F-Mean", "J&F-Mean"}} averaging each sequence's objects."""
    out: dict[str, dict[str, float]] = {}
    for name in dict.fromkeys(s.sequence for s in scores):
        own = [s for s in scores if s.sequence == name]
        j = float(np.mean([s.j_mean for s in own]))
        f = float(np.mean([s.f_mean for s in own]))
        out[name] = {"J-Mean": j, "F-Mean": f, "J&F-Mean": (j + f) / 2}
    return out


def write_results_csv(path: str | Path, scores: Sequence[ObjectScore]) -> Path:
    """One row per object (``<seq>_<id>`` as in DAVIS' per-sequence table), written atomically."""
    from pe_dense.utils.io import atomic_write

    def write(tmp: Path) -> None:
        with open(tmp, "w", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(["Sequence", "Object", "J&F-Mean", "J-Mean", "J-Recall", "J-Decay",
                             "F-Mean", "F-Recall", "F-Decay"])
            for s in scores:
                d = asdict(s)
                writer.writerow([f"{s.sequence}_{s.object_id}", s.object_id] + [
                    f"{v:.6f}" for v in (s.jf_mean, d["j_mean"], d["j_recall"], d["j_decay"],
                                         d["f_mean"], d["f_recall"], d["f_decay"])])

    return atomic_write(path, write)


def write_global_csv(path: str | Path, summary: dict[str, float]) -> Path:
    """The DAVIS global table (J&F-Mean, J-Mean, J-Recall, J-Decay, F-Mean, F-Recall, F-Decay)."""
    from pe_dense.utils.io import atomic_write

    names = ["J&F-Mean", "J-Mean", "J-Recall", "J-Decay", "F-Mean", "F-Recall", "F-Decay"]

    def write(tmp: Path) -> None:
        with open(tmp, "w", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(names)
            writer.writerow([f"{summary[n]:.6f}" for n in names])

    return atomic_write(path, write)


def write_sequence_csv(path: str | Path, scores: Sequence[ObjectScore]) -> Path:
    """One row per sequence (the mean of its objects): Sequence, Objects, J&F, J, F means."""
    from pe_dense.utils.io import atomic_write

    means = sequence_means(scores)
    counts = {name: sum(s.sequence == name for s in scores) for name in means}

    def write(tmp: Path) -> None:
        with open(tmp, "w", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(["Sequence", "Objects", "J&F-Mean", "J-Mean", "F-Mean"])
            for name, m in means.items():
                writer.writerow([name, counts[name]] + [f"{m[k]:.6f}" for k in
                                                        ("J&F-Mean", "J-Mean", "F-Mean")])

    return atomic_write(path, write)
