"""Detection transforms on a ``results`` dict (config names: :data:`TRANSFORMS_BY_NAME`).

Keys: ``image`` (H, W, 3) uint8 RGB; ``boxes`` (N, 4) float32 xyxy pixels; ``labels`` (N,) int64
(contiguous, 0-based); ``masks`` (N, H, W) uint8 (optional); ``scale`` (sy, sx) from the
original image to the current one; ``ori_size`` (h0, w0); ``image_id``. Geometric transforms
move boxes and masks with the image and drop instances left with no area.

Large-scale jitter (ViTDet): ``RandomFlip`` + ``LargeScaleJitter(size=1024, min_scale=0.1,
max_scale=2.0)`` (resize by a random scale, keep aspect, random crop of at most size x size;
padding happens in the collate). Testing: ``ResizeLongestSide(size=1024)``.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

__all__ = ["RandomFlip", "LargeScaleJitter", "ResizeLongestSide", "PackDetInputs", "Compose",
           "TRANSFORMS_BY_NAME", "build_transform", "resize_image", "resize_masks"]

Results = dict[str, Any]


def resize_image(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(H, W, 3) uint8 -> (h, w, 3) uint8, bilinear with antialiasing when shrinking."""
    if image.shape[:2] == tuple(size):
        return image
    t = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)[None]
    shrink = size[0] < image.shape[0] or size[1] < image.shape[1]
    t = F.interpolate(t, size=size, mode="bilinear", align_corners=False, antialias=shrink)
    return t[0].permute(1, 2, 0).numpy()


def resize_masks(masks: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(N, H, W) uint8 -> (N, h, w) uint8, nearest neighbour."""
    if masks.shape[1:] == tuple(size) or masks.shape[0] == 0:
        return np.zeros((0, *size), np.uint8) if masks.shape[0] == 0 else masks
    t = torch.from_numpy(np.ascontiguousarray(masks))[None]
    return F.interpolate(t, size=size, mode="nearest")[0].numpy()


def _keep(results: Results, keep: np.ndarray) -> None:
    for key in ("boxes", "labels", "masks"):
        if key in results:
            results[key] = results[key][keep]


def _boxes_from_masks(masks: np.ndarray) -> np.ndarray:
    """Tight xyxy boxes of (N, H, W) masks; empty masks give zero boxes."""
    boxes = np.zeros((len(masks), 4), np.float32)
    for i, m in enumerate(masks):
        ys, xs = np.nonzero(m.any(1))[0], np.nonzero(m.any(0))[0]
        if len(ys):
            boxes[i] = (xs[0], ys[0], xs[-1] + 1, ys[-1] + 1)
    return boxes


def _drop_empty(results: Results, min_size: float = 1.0) -> None:
    boxes = results.get("boxes")
    if boxes is None or not len(boxes):
        return
    keep = ((boxes[:, 2] - boxes[:, 0]) >= min_size) & ((boxes[:, 3] - boxes[:, 1]) >= min_size)
    if "masks" in results:
        keep &= results["masks"].reshape(len(boxes), -1).any(1)
    _keep(results, keep)


def _rescale(results: Results, size: tuple[int, int]) -> None:
    """Resize image, boxes and masks to ``size`` (h, w); update ``scale``."""
    h, w = results["image"].shape[:2]
    sy, sx = size[0] / h, size[1] / w
    results["image"] = resize_image(results["image"], size)
    if "boxes" in results:
        results["boxes"] = results["boxes"] * np.array([sx, sy, sx, sy], np.float32)
    if "masks" in results:
        results["masks"] = resize_masks(results["masks"], size)
    scale = results.get("scale", (1.0, 1.0))
    results["scale"] = (scale[0] * sy, scale[1] * sx)


class RandomFlip:
    """Horizontal flip with probability ``prob``."""

    def __init__(self, prob: float = 0.5) -> None:
        self.prob = prob

    def __call__(self, results: Results) -> Results:
        if random.random() >= self.prob:
            return results
        w = results["image"].shape[1]
        results["image"] = results["image"][:, ::-1].copy()
        if "boxes" in results and len(results["boxes"]):
            b = results["boxes"].copy()
            results["boxes"] = np.stack([w - b[:, 2], b[:, 1], w - b[:, 0], b[:, 3]], 1)
        if "masks" in results:
            results["masks"] = results["masks"][:, :, ::-1].copy()
        results["flip"] = not results.get("flip", False)
        return results


class LargeScaleJitter:
    """Resize so the image fits ``size * s`` (``s`` uniform in [min_scale, max_scale], aspect
    kept), then crop a random window of at most ``size`` x ``size``. Boxes are clipped to the
    crop (recomputed from masks when there are masks); instances left empty are dropped."""

    def __init__(self, size: int = 1024, min_scale: float = 0.1, max_scale: float = 2.0) -> None:
        if not 0 < min_scale <= max_scale:
            raise ValueError(f"need 0 < min_scale <= max_scale, got {min_scale}, {max_scale}")
        self.size, self.min_scale, self.max_scale = size, min_scale, max_scale

    def __call__(self, results: Results) -> Results:
        h, w = results["image"].shape[:2]
        s = random.uniform(self.min_scale, self.max_scale) * self.size / max(h, w)
        sh, sw = max(1, round(h * s)), max(1, round(w * s))
        ch, cw = min(self.size, sh), min(self.size, sw)
        y0, x0 = random.randint(0, sh - ch), random.randint(0, sw - cw)
        # Resize only the part of the masks that the crop keeps.
        masks = results.pop("masks", None)
        _rescale(results, (sh, sw))
        results["image"] = results["image"][y0:y0 + ch, x0:x0 + cw].copy()
        if masks is not None:
            oy0, ox0 = math.floor(y0 / s), math.floor(x0 / s)
            oy1, ox1 = min(h, math.ceil((y0 + ch) / s) + 1), min(w, math.ceil((x0 + cw) / s) + 1)
            region = masks[:, oy0:oy1, ox0:ox1]
            ry0, rx0 = round(oy0 * s), round(ox0 * s)
            rh, rw = round(oy1 * s) - ry0, round(ox1 * s) - rx0
            region = resize_masks(region, (max(rh, 1), max(rw, 1)))
            cut = region[:, y0 - ry0:y0 - ry0 + ch, x0 - rx0:x0 - rx0 + cw]
            results["masks"] = np.zeros((len(masks), ch, cw), np.uint8)
            results["masks"][:, :cut.shape[1], :cut.shape[2]] = cut
        if "boxes" in results:
            b = results["boxes"] - np.array([x0, y0, x0, y0], np.float32)
            b[:, 0::2] = b[:, 0::2].clip(0, cw)
            b[:, 1::2] = b[:, 1::2].clip(0, ch)
            if masks is not None:
                b = _boxes_from_masks(results["masks"])
            results["boxes"] = b
            _drop_empty(results)
        results["crop"] = (y0, x0)
        return results


class ResizeLongestSide:
    """Resize (aspect kept) so the longer side is ``size`` pixels (test-time LSJ)."""

    def __init__(self, size: int = 1024) -> None:
        self.size = size

    def __call__(self, results: Results) -> Results:
        h, w = results["image"].shape[:2]
        s = self.size / max(h, w)
        _rescale(results, (max(1, round(h * s)), max(1, round(w * s))))
        return results


class PackDetInputs:
    """-> ``{"inputs": (3, H, W) uint8 tensor, "data_samples": dict}``; the sample dict has
    ``boxes`` (N, 4) float32, ``labels`` (N,) int64, ``masks`` (N, H, W) uint8 (if present),
    ``img_size`` (H, W), ``ori_size``, ``scale``, ``image_id`` and ``flip``."""

    def __call__(self, results: Results) -> dict[str, Any]:
        image = results["image"]
        sample: dict[str, Any] = {
            "img_size": tuple(image.shape[:2]),
            "ori_size": tuple(results.get("ori_size", image.shape[:2])),
            "scale": tuple(results.get("scale", (1.0, 1.0))),
            "image_id": results.get("image_id", -1),
            "flip": bool(results.get("flip", False)),
        }
        if "boxes" in results:
            sample["boxes"] = torch.as_tensor(results["boxes"], dtype=torch.float32).reshape(-1, 4)
            sample["labels"] = torch.as_tensor(results["labels"], dtype=torch.int64).reshape(-1)
        if "masks" in results:
            sample["masks"] = torch.from_numpy(np.ascontiguousarray(results["masks"]))
        inputs = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).contiguous()
        return {"inputs": inputs, "data_samples": sample}


TRANSFORMS_BY_NAME: dict[str, type] = {
    "RandomFlip": RandomFlip, "LargeScaleJitter": LargeScaleJitter,
    "ResizeLongestSide": ResizeLongestSide, "PackDetInputs": PackDetInputs}


def build_transform(cfg: Mapping[str, Any]) -> Callable[[Results], Any]:
    """``{"type": "RandomFlip", "prob": 0.5}`` -> the transform (types of
    :data:`TRANSFORMS_BY_NAME`; the engine's ``TRANSFORMS`` registry resolves other names)."""
    args = dict(cfg)
    kind = args.pop("type", None)
    if kind not in TRANSFORMS_BY_NAME:
        raise ValueError(f"unknown transform type {kind!r}; known: {sorted(TRANSFORMS_BY_NAME)} "
                         "(pass a callable for your own transform)")
    return TRANSFORMS_BY_NAME[kind](**args)


class Compose:
    """Apply transforms (callables, or config dicts for :func:`build_transform`) in order."""

    def __init__(self, transforms: Sequence[Any]) -> None:
        self.transforms = [build_transform(t) if isinstance(t, Mapping) else t
                           for t in transforms]
        for t in self.transforms:
            if not callable(t):
                raise TypeError(f"transform {t!r} is not callable")

    def __call__(self, results: Results) -> Any:
        for t in self.transforms:
            results = t(results)
        return results
