"""Image <-> tensor conversion with PE's normalisation (mean = std = 0.5)."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

__all__ = ["to_input", "resize_to_multiple"]


def to_input(image: np.ndarray | torch.Tensor) -> torch.Tensor:
    """(H, W, 3) uint8 RGB -> (3, H, W) float32 in [-1, 1]."""
    t = torch.from_numpy(np.array(image)) if isinstance(image, np.ndarray) else image
    if t.ndim != 3 or t.shape[-1] != 3 or t.dtype != torch.uint8:
        raise ValueError(f"expected an (H, W, 3) uint8 RGB image, got {tuple(t.shape)} {t.dtype}")
    return t.permute(2, 0, 1).float().div(127.5).sub(1.0)


def resize_to_multiple(x: torch.Tensor, short_side: int, multiple: int) -> torch.Tensor:
    """Resize (B, 3, H, W) so the short side is about ``short_side`` and both sides are
    multiples of ``multiple`` (bilinear, as PE was trained)."""
    h, w = x.shape[-2:]
    scale = short_side / min(h, w)
    size = (max(multiple, round(h * scale / multiple) * multiple),
            max(multiple, round(w * scale / multiple) * multiple))
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False)
