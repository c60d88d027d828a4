"""Sliced detection on large images: tiles at the detector's own scale, plus the whole image.

A detector trained on images of a few hundred pixels sees a 4000 x 3000 photo shrunk about 15
times by its test resize, so objects of 30 pixels become 2. :func:`sliced_predict` runs it on
overlapping ``slice_size`` tiles at full resolution (the grid of
:func:`pe_dense.tasks.common.window_grid`, last row and column shifted inward) and, with
``whole=True``, on the whole image (for objects larger than a tile); detections are shifted to
image pixels and merged:

1. **cut fragments dropped** (``drop_cut``): a tile detection whose box reaches an internal
   border of its tile (within ``CUT_MARGIN`` pixels; not the image border) may be a fragment
   of an object that continues in the neighbouring tile. It is dropped when a same-class
   detection of another pass (a neighbouring tile, or the whole image) covers it
   (intersection over the fragment's area above ``COVER``), reaches past that border (it
   saw more of the object there) and is not itself cut at a border the fragment reaches past
   (two pieces of one object, each seeing what the other misses, are left to step 2). The
   whole image is a coarse view of small objects: its detection must also score at least as
   high as the fragment;
2. **greedy merging** (SAHI's "greedy NMM"): in order of score, each remaining detection
   absorbs the lower-scored same-class detections *of other passes* that match it (``match``
   IoU or IoS, intersection over the smaller box, above ``nms_iou``): union of boxes, union of
   masks, the higher score. Each detection is merged at most once, into the first (highest
   scored) detection it matches. Detections of one pass are never merged (the detector's own
   NMS already ran on them);
3. **class-wise NMS** (``torchvision.ops.batched_nms`` at ``nms_iou``) over the merged
   detections, then the ``max_detections`` best.

IoS merges the pieces of an object cut by a tile border into the whole-image detection of it,
but also lets a large false box swallow the small detections inside it and grows boxes past
IoU 0.5 with their object (docs/benchmarks.md, "Sliced inference on large images"); IoU (the
default) never merges boxes of very different sizes. Steps 1 and 2 compare every pair of
candidates (in chunks: bounded memory, quadratic time; 0.2-0.3 s for 300 tiles of a trained
detector): ``score_thresh`` drops low-scoring candidates first when there are very many.

Memory: masks are cut to the bounding box of their pixels as soon as a pass returns them, so
the merge holds about the summed area of the detections; the result's ``masks`` is (K, H, W)
bool, K <= ``max_detections`` (1.2 GB for 100 masks at 4000 x 3000), or with
``mask_format="crops"`` the crops themselves (:func:`expand_masks` pastes them). A detector
fed the whole image pastes its masks at full size itself (``MaskRCNN.postprocess``: N x H x W
float32 before thresholding); ``whole_size`` shrinks the image before ``detect`` instead, so
the whole pass costs no more than a tile.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torchvision.ops import batched_nms

from pe_dense.data.det_transforms import resize_image
from pe_dense.data.images import check_rgb
from pe_dense.tasks.common import Window, overlap_stride, window_grid

__all__ = ["sliced_predict", "tile_windows", "expand_masks", "MaskCrop", "CUT_MARGIN", "COVER"]

Detect = Callable[[list[np.ndarray]], Sequence[Mapping[str, Any]]]
CUT_MARGIN = 2.0  # pixels: a box this close to an internal tile border counts as cut
COVER = 0.5  # a fragment is covered by a box holding this fraction of its area
_CHUNK = 128  # rows of a pairwise box matrix computed at once (bounds its memory)


@dataclass
class MaskCrop:
    """One mask as the bounding box of its pixels: ``mask`` (h, w) bool placed at (x0, y0)."""

    x0: int
    y0: int
    mask: np.ndarray


def tile_windows(size: tuple[int, int], slice_size: int, overlap: float = 0.2) -> list[Window]:
    """Tiles (x0, y0, x1, y1) of ``slice_size`` pixels (smaller when the image is) covering an
    image of ``size`` (h, w), neighbours overlapping by at least ``overlap`` of a tile."""
    stride = overlap_stride(slice_size, overlap)
    return window_grid(size, (slice_size, slice_size), (stride, stride))


def expand_masks(crops: Sequence[MaskCrop], size: tuple[int, int]) -> np.ndarray:
    """Mask crops -> (K, H, W) bool at ``size`` (h, w): K H W bytes."""
    out = np.zeros((len(crops), *size), bool)
    for k, c in enumerate(crops):
        h, w = c.mask.shape
        out[k, c.y0:c.y0 + h, c.x0:c.x0 + w] = c.mask
    return out


def _numpy(v: Any) -> np.ndarray:
    return v.detach().cpu().numpy() if isinstance(v, torch.Tensor) else np.asarray(v)


def _crop(mask: np.ndarray, x0: int, y0: int) -> MaskCrop:
    """(h, w) bool mask -> its pixels' bounding box, placed at (x0, y0) + that box's corner."""
    rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    if not len(rows):
        return MaskCrop(x0, y0, np.zeros((0, 0), bool))
    r0, r1, c0, c1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
    return MaskCrop(x0 + int(c0), y0 + int(r0), np.ascontiguousarray(mask[r0:r1, c0:c1]))


def _upscale(crop: MaskCrop, sx: float, sy: float, size: tuple[int, int]) -> MaskCrop:
    """A crop of a mask predicted on an image shrunk by (sx, sy) -> the same mask in image
    pixels (nearest neighbour of each pixel centre)."""
    h, w = crop.mask.shape
    if not h:
        return MaskCrop(int(crop.x0 * sx), int(crop.y0 * sy), crop.mask)
    ys = np.arange(int(crop.y0 * sy), min(int(np.ceil((crop.y0 + h) * sy)), size[0]))
    xs = np.arange(int(crop.x0 * sx), min(int(np.ceil((crop.x0 + w) * sx)), size[1]))
    iy = ((ys + 0.5) / sy).astype(np.int64) - crop.y0
    ix = ((xs + 0.5) / sx).astype(np.int64) - crop.x0
    iy, ix = np.clip(iy, 0, h - 1), np.clip(ix, 0, w - 1)
    inside_y = (((ys + 0.5) / sy) >= crop.y0) & (((ys + 0.5) / sy) < crop.y0 + h)
    inside_x = (((xs + 0.5) / sx) >= crop.x0) & (((xs + 0.5) / sx) < crop.x0 + w)
    mask = crop.mask[np.ix_(iy, ix)] & inside_y[:, None] & inside_x[None, :]
    return _crop(mask, int(xs[0]) if len(xs) else 0, int(ys[0]) if len(ys) else 0)


class _Pool:
    """All passes' detections in image pixels: boxes (M, 4), scores, labels, source (the pass:
    tile index, or -1 for the whole image), cut (M, 4): the internal tile border that each
    box side (x0, y0, x1, y1) reaches, NaN where none; masks (crops, or None when the
    detector gives none)."""

    def __init__(self) -> None:
        self.parts: list[dict[str, np.ndarray]] = []
        self.masks: list[MaskCrop] | None = []

    def add(self, det: Mapping[str, Any], source: int, window: Window, size: tuple[int, int],
            scale: tuple[float, float] = (1.0, 1.0), score_thresh: float = 0.0) -> None:
        """One pass's detections: ``window`` (x0, y0, x1, y1) is where its input sits in the
        image, ``scale`` (sx, sy) how much larger the image is than that input."""
        scores = _numpy(det["scores"]).astype(np.float32).reshape(-1)
        keep = scores >= score_thresh
        boxes = _numpy(det["boxes"]).astype(np.float32).reshape(-1, 4)[keep]
        x0, y0, x1, y1 = window
        sx, sy = scale
        boxes = boxes * np.array([sx, sy, sx, sy], np.float32) + np.array(
            [x0, y0, x0, y0], np.float32)
        # the internal tile border each box side reaches (NaN: none)
        cut = np.full((len(boxes), 4), np.nan, np.float32)
        if source >= 0:
            h, w = size
            for side, edge, inner in ((0, x0, x0 > 0), (1, y0, y0 > 0)):
                if inner:
                    cut[boxes[:, side] <= edge + CUT_MARGIN, side] = edge
            for side, edge, inner in ((2, x1, x1 < w), (3, y1, y1 < h)):
                if inner:
                    cut[boxes[:, side] >= edge - CUT_MARGIN, side] = edge
        self.parts.append({"boxes": boxes, "scores": scores[keep], "cut": cut,
                           "labels": _numpy(det["labels"]).astype(np.int64).reshape(-1)[keep],
                           "source": np.full(len(boxes), source, np.int64)})
        masks = det.get("masks")
        if masks is None or self.masks is None:
            self.masks = None
            return
        for i in np.flatnonzero(keep):  # one mask at a time: no copy of a full-size stack
            crop = _crop(_numpy(masks[i]).astype(bool, copy=False), x0, y0)
            self.masks.append(crop if scale == (1.0, 1.0) else _upscale(crop, sx, sy, size))

    def arrays(self) -> dict[str, np.ndarray]:
        return {k: np.concatenate([p[k] for p in self.parts]) for k in self.parts[0]}


def _pairs(boxes: np.ndarray, metric: str) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """f(rows, cols) -> the (len(rows), len(cols)) IoU / IoS matrix of those boxes."""
    area = (boxes[:, 2] - boxes[:, 0]).clip(0) * (boxes[:, 3] - boxes[:, 1]).clip(0)

    def f(rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        a, b = boxes[rows], boxes[cols]
        iw = (np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0]))
        ih = (np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1]))
        inter = iw.clip(0) * ih.clip(0)
        ar, ac = area[rows][:, None], area[cols][None, :]
        if metric == "iou":
            denom = ar + ac - inter
        elif metric == "ios":
            denom = np.minimum(ar, ac)
        else:  # "iof": intersection over the row box's area
            denom = np.broadcast_to(ar, inter.shape)
        return inter / np.maximum(denom, 1e-9)
    return f


def _reaches_past(boxes: np.ndarray, cut: np.ndarray) -> np.ndarray:
    """(N, 4) boxes x (R, 4) cut borders -> (R, N): box n extends beyond a border of row r
    (by more than ``CUT_MARGIN``)."""
    past = np.zeros((len(cut), len(boxes)), bool)
    for side in range(4):  # comparisons with NaN (no border) are False
        if side < 2:
            past |= boxes[None, :, side] < cut[:, side, None] - CUT_MARGIN
        else:
            past |= boxes[None, :, side] > cut[:, side, None] + CUT_MARGIN
    return past


def _drop_cut(d: dict[str, np.ndarray]) -> np.ndarray:
    """Keep-mask: False for the cut tile detections that another pass saw more of (step 1 of
    the module docstring)."""
    keep = np.ones(len(d["boxes"]), bool)
    boxes, cut = d["boxes"], d["cut"]
    is_cut = ~np.isnan(cut).all(1)
    cover = _pairs(boxes, "iof")
    everyone = np.arange(len(boxes))
    for s in range(0, int(is_cut.sum()), _CHUNK):
        rows = np.flatnonzero(is_cut)[s:s + _CHUNK]
        hit = cover(rows, everyone) > COVER
        hit &= d["labels"][rows][:, None] == d["labels"][None, :]
        hit &= d["source"][rows][:, None] != d["source"][None, :]
        whole_view = d["source"][None, :] < 0
        hit &= ~whole_view | (d["scores"][None, :] >= d["scores"][rows][:, None])
        hit &= _reaches_past(boxes, cut[rows])  # the other saw beyond our cut ...
        hit &= ~_reaches_past(boxes[rows], cut).T  # ... and we see nothing beyond its cuts
        keep[rows[hit.any(1)]] = False
    return keep


def _merge(d: dict[str, np.ndarray], masks: list[MaskCrop] | None, thr: float, metric: str
           ) -> tuple[dict[str, np.ndarray], list[MaskCrop] | None]:
    """Greedy merging across passes (see the module docstring); d sorted by score."""
    n = len(d["boxes"])
    match = _pairs(d["boxes"], metric)
    partners: list[np.ndarray] = []
    for s in range(0, n, _CHUNK):
        rows, cols = np.arange(s, min(s + _CHUNK, n)), np.arange(s + 1, n)
        hit = match(rows, cols) > thr
        hit &= d["labels"][rows][:, None] == d["labels"][cols][None, :]
        hit &= d["source"][rows][:, None] != d["source"][cols][None, :]
        hit &= rows[:, None] < cols[None, :]  # only lower-scored partners
        partners += [cols[r] for r in hit]
    used = np.zeros(n, bool)
    keep, boxes = [], d["boxes"].copy()
    out_masks: list[MaskCrop] | None = [] if masks is not None else None
    for i in range(n):
        if used[i]:
            continue
        group = [i] + [j for j in partners[i] if not used[j]]
        used[group] = True
        keep.append(i)
        boxes[i, :2] = d["boxes"][group, :2].min(0)
        boxes[i, 2:] = d["boxes"][group, 2:].max(0)
        if out_masks is not None:
            out_masks.append(_union([masks[g] for g in group]))
    keep = np.asarray(keep, np.int64)
    merged = {k: v[keep] for k, v in d.items()}
    merged["boxes"] = boxes[keep]
    return merged, out_masks


def _union(crops: Sequence[MaskCrop]) -> MaskCrop:
    """Pixel union of mask crops."""
    crops = [c for c in crops if c.mask.size]
    if len(crops) <= 1:
        return crops[0] if crops else MaskCrop(0, 0, np.zeros((0, 0), bool))
    x0, y0 = min(c.x0 for c in crops), min(c.y0 for c in crops)
    x1 = max(c.x0 + c.mask.shape[1] for c in crops)
    y1 = max(c.y0 + c.mask.shape[0] for c in crops)
    out = np.zeros((y1 - y0, x1 - x0), bool)
    for c in crops:
        h, w = c.mask.shape
        out[c.y0 - y0:c.y0 - y0 + h, c.x0 - x0:c.x0 - x0 + w] |= c.mask
    return MaskCrop(x0, y0, out)


def _run_passes(detect: Detect, image: np.ndarray, tiles: list[Window], whole: bool,
                whole_size: int, batch_size: int, score_thresh: float) -> _Pool:
    h, w = image.shape[:2]
    pool = _Pool()
    for s in range(0, len(tiles), batch_size):
        group = tiles[s:s + batch_size]
        crops = [np.ascontiguousarray(image[y0:y1, x0:x1]) for x0, y0, x1, y1 in group]
        results = detect(crops)
        if len(results) != len(crops):
            raise ValueError(f"detect returned {len(results)} results for {len(crops)} tiles; "
                             "it must return one dict per image")
        for k, det in enumerate(results):
            pool.add(det, s + k, group[k], (h, w), score_thresh=score_thresh)
    if whole and (len(tiles) > 1 or tiles[0] != (0, 0, w, h)):
        small, scale = image, (1.0, 1.0)
        if whole_size and max(h, w) > whole_size:
            f = whole_size / max(h, w)
            small = resize_image(image, (max(1, round(h * f)), max(1, round(w * f))))
            scale = (w / small.shape[1], h / small.shape[0])
        (det,) = detect([small])
        pool.add(det, -1, (0, 0, w, h), (h, w), scale, score_thresh)
    return pool


def _check_options(match: str, mask_format: str, batch_size: int, max_detections: int) -> None:
    if match not in ("iou", "ios"):
        raise ValueError(f"match must be 'iou' or 'ios', got {match!r}")
    if mask_format not in ("full", "crops"):
        raise ValueError(f"mask_format must be 'full' or 'crops', got {mask_format!r}")
    if batch_size < 1 or max_detections < 0:
        raise ValueError(f"batch_size must be >= 1 and max_detections >= 0, got {batch_size}, "
                         f"{max_detections}")


def sliced_predict(detect: Detect, image: np.ndarray, slice_size: int, overlap: float = 0.2,
                   whole: bool = True, nms_iou: float = 0.5, match: str = "iou",
                   batch_size: int = 4, max_detections: int = 100, *, whole_size: int = 0,
                   drop_cut: bool = True, score_thresh: float = 0.0,
                   mask_format: str = "full") -> dict[str, Any]:
    """Detections on a large uint8 (H, W, 3) RGB image from tiles plus the whole image.

    ``detect(images: list of (h, w, 3) uint8) -> list of dicts`` gives per image ``boxes``
    (N, 4) xyxy float in that image's pixels, ``scores`` (N,), ``labels`` (N,) 0-based and
    ``masks`` (N, h, w) bool or None / absent (torch or numpy; e.g. a ``MaskRCNN``'s
    ``predict_images``); it is called with up to ``batch_size`` tiles of ``slice_size`` pixels
    (see :func:`tile_windows`; use the detector's training size) overlapping by ``overlap``,
    then (``whole``) with the whole image, shrunk first to ``whole_size`` on its long side when
    that is > 0 (the detector's own test resize size: same result, less memory).
    Detections below ``score_thresh`` are ignored; the rest are merged as the module docstring
    says (``drop_cut``, greedy merging by ``match`` "iou" | "ios" above ``nms_iou``, class-wise
    NMS at ``nms_iou``).

    Returns numpy arrays, best first, at most ``max_detections``: ``boxes`` (K, 4) float32
    xyxy image pixels, ``scores`` (K,) float32, ``labels`` (K,) int64 0-based, ``ori_size``
    (H, W), and when the detector gives masks ``masks`` (K, H, W) bool (``mask_format="full"``)
    or ``mask_crops``, a list of :class:`MaskCrop` (``"crops"``; :func:`expand_masks` pastes
    them).
    """
    image = check_rgb(image)
    _check_options(match, mask_format, batch_size, max_detections)
    h, w = image.shape[:2]
    tiles = tile_windows((h, w), slice_size, overlap)
    pool = _run_passes(detect, image, tiles, whole, whole_size, batch_size, score_thresh)
    d, masks = pool.arrays(), pool.masks
    if drop_cut:
        keep = np.flatnonzero(_drop_cut(d))
        d = {k: v[keep] for k, v in d.items()}
        masks = [masks[i] for i in keep] if masks is not None else None
    order = np.argsort(-d["scores"], kind="stable")
    d = {k: v[order] for k, v in d.items()}
    masks = [masks[i] for i in order] if masks is not None else None
    d, masks = _merge(d, masks, nms_iou, match)
    keep = batched_nms(torch.from_numpy(d["boxes"]), torch.from_numpy(d["scores"]),
                       torch.from_numpy(d["labels"]), nms_iou).numpy()[:max_detections]
    out: dict[str, Any] = {"boxes": d["boxes"][keep], "scores": d["scores"][keep],
                           "labels": d["labels"][keep], "ori_size": (h, w)}
    if masks is not None:
        crops = [masks[i] for i in keep]
        if mask_format == "crops":
            out["mask_crops"] = crops
        else:
            out["masks"] = expand_masks(crops, (h, w))
    return out
