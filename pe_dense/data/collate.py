"""Batch collation: the one place where batches are padded (bottom/right, with zeros).

Models do not pad again; they check the size (e.g. the detection pyramid wants multiples of its
coarsest stride, 64 by default). The engine registers :func:`detection_collate` in ``FUNCTIONS``
(config: ``collate_fn=dict(type="pe_dense.detection_collate", square_size=1024)``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F

__all__ = ["pad_images", "detection_collate"]


def pad_images(images: Sequence[torch.Tensor], size_divisor: int = 1,
               square_size: int = 0) -> torch.Tensor:
    """Stack (C, H_i, W_i) tensors into (B, C, H, W), zero-padding bottom/right.

    H, W is the largest image size rounded up to ``size_divisor``, or ``square_size`` x
    ``square_size`` when given (ValueError if an image is larger).
    """
    if not images:
        raise ValueError("cannot collate an empty batch")
    h = max(int(im.shape[-2]) for im in images)
    w = max(int(im.shape[-1]) for im in images)
    if square_size:
        if h > square_size or w > square_size:
            raise ValueError(f"image {h}x{w} exceeds square_size {square_size}; resize images "
                             "so their long side is at most square_size")
        h = w = square_size
    else:
        h, w = (math.ceil(s / size_divisor) * size_divisor for s in (h, w))
    return torch.stack([F.pad(im, (0, w - im.shape[-1], 0, h - im.shape[-2])) for im in images])


def detection_collate(batch: Sequence[dict[str, Any]], size_divisor: int = 64,
                      square_size: int = 0) -> dict[str, Any]:
    """Items ``{"inputs": (3, H_i, W_i) uint8, "data_samples": dict}`` ->
    ``{"inputs": (B, 3, H, W) uint8 (zero-padded), "data_samples": [dict, ...]}``; each sample's
    ``img_size`` keeps the unpadded size, which the model uses to neutralise the padding.
    ``size_divisor`` (default 64, the coarsest stride of the p2..p6 pyramid) or ``square_size``:
    see :func:`pad_images`."""
    return {"inputs": pad_images([b["inputs"] for b in batch], size_divisor, square_size),
            "data_samples": [b["data_samples"] for b in batch]}
