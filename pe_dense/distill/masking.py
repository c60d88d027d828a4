"""MaskFeat-style block masking of the student's input tokens.

Representation of masked tokens: the student's input patch is set to 0, i.e. mid-grey in PE's
[-1, 1] normalisation. ``conv1`` has no bias, so a masked token enters the transformer as its
position embedding alone (plus ``ln_pre``); no learned mask token or other parameter is added
(the paper's "no extra parameters"). Teachers always see the unmasked image, and the losses are
taken on all tokens, so the student learns to predict the teacher at masked positions.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["block_mask", "apply_token_mask"]


def block_mask(batch: int, grid: tuple[int, int], ratio: float = 0.75, block: int = 2,
               generator: torch.Generator | None = None) -> torch.Tensor:
    """Random mask of ``block`` x ``block`` token blocks, a fraction ``ratio`` of blocks each.

    Blocks tile the grid from the top-left corner (partial blocks at the right/bottom edge when
    the grid is not a multiple of ``block``). Returns (B, gh, gw) bool, True = masked.
    """
    if not 0.0 <= ratio < 1.0:
        raise ValueError(f"mask ratio {ratio} must be in [0, 1)")
    if block < 1:
        raise ValueError(f"mask block size {block} must be >= 1")
    gh, gw = grid
    bh, bw = -(-gh // block), -(-gw // block)
    n_blocks = bh * bw
    n_masked = int(round(ratio * n_blocks))
    scores = torch.rand(batch, n_blocks, generator=generator)
    order = scores.argsort(dim=1)
    masked = torch.zeros(batch, n_blocks, dtype=torch.bool)
    masked.scatter_(1, order[:, :n_masked], True)
    masked = masked.view(batch, 1, bh, bw).float()
    full = F.interpolate(masked, scale_factor=block, mode="nearest")[:, 0, :gh, :gw]
    return full.bool()


def apply_token_mask(images: torch.Tensor, mask: torch.Tensor, patch_size: int) -> torch.Tensor:
    """Zero the input patches of masked tokens.

    images: (B, 3, H, W) in [-1, 1]; mask: (B, H/p, W/p) bool. Returns a new (B, 3, H, W).
    """
    b, _, h, w = images.shape
    if mask.shape != (b, h // patch_size, w // patch_size):
        raise ValueError(f"mask {tuple(mask.shape)} does not match images {tuple(images.shape)} "
                         f"with patch {patch_size}")
    keep = (~mask).to(images.dtype)[:, None]
    keep = keep.repeat_interleave(patch_size, dim=2).repeat_interleave(patch_size, dim=3)
    return images * keep.to(images.device)
