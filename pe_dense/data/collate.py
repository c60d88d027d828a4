"""Batch collation with padding, registered in ``FUNCTIONS`` (use ``"pe_dense.<name>"``)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F

from pe_dense.engine.registry import FUNCTIONS

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


@FUNCTIONS.register_module()
def detection_collate(batch: Sequence[dict[str, Any]], size_divisor: int = 32,
                      square_size: int = 0) -> dict[str, Any]:
    """Items ``{"inputs": (3, H_i, W_i) uint8, "data_samples": dict}`` ->
    ``{"inputs": (B, 3, H, W) uint8 (zero-padded), "data_samples": [dict, ...]}``; each sample's
    ``img_size`` keeps the unpadded size, which the model uses to neutralise the padding."""
    return {"inputs": pad_images([b["inputs"] for b in batch], size_divisor, square_size),
            "data_samples": [b["data_samples"] for b in batch]}
