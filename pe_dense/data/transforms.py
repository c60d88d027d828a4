"""Resizing images to multiples of the patch size (uint8 batches stay uint8: the input contract of
:mod:`pe_dense.backbone.inputs`)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["resize_to_multiple", "size_to_multiple"]


def size_to_multiple(size: tuple[int, int], short_side: int, multiple: int) -> tuple[int, int]:
    """(H, W) scaled so the short side is about ``short_side``, both sides rounded to
    multiples of ``multiple`` (at least one ``multiple``)."""
    h, w = size
    scale = short_side / min(h, w)
    return (max(multiple, round(h * scale / multiple) * multiple),
            max(multiple, round(w * scale / multiple) * multiple))


def resize_to_multiple(x: torch.Tensor, short_side: int, multiple: int) -> torch.Tensor:
    """Resize (B, 3, H, W) so the short side is about ``short_side`` and both sides are
    multiples of ``multiple`` (bilinear, as PE was trained). A uint8 batch stays uint8
    (rounded), a float batch stays float."""
    size = size_to_multiple(tuple(x.shape[-2:]), short_side, multiple)
    if x.dtype == torch.uint8:
        y = F.interpolate(x.float(), size=size, mode="bilinear", align_corners=False)
        return y.round_().clamp_(0, 255).to(torch.uint8)
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False)
