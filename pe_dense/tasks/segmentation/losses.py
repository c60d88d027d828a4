"""Segmentation loss: pixel cross-entropy over non-ignored pixels (``docs/dense_protocols.md``
section 2)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["seg_cross_entropy", "seg_loss_and_accuracy"]


def seg_cross_entropy(logits: torch.Tensor, label: torch.Tensor, ignore_index: int = 255,
                      class_weight: torch.Tensor | None = None) -> torch.Tensor:
    """Pixel cross-entropy averaged over non-ignored pixels.

    logits: (B, K, h, w), resized bilinearly (align_corners=False) to the label size;
    label: (B, H, W) long. Zero (with grad) when every pixel is ignored.
    """
    if logits.shape[-2:] != label.shape[-2:]:
        logits = F.interpolate(logits, size=label.shape[-2:], mode="bilinear",
                               align_corners=False)
    if bool((label == ignore_index).all()):
        return logits.sum() * 0.0
    return F.cross_entropy(logits.float(), label.long(), weight=class_weight,
                           ignore_index=ignore_index)


def seg_loss_and_accuracy(logits: torch.Tensor, labels: torch.Tensor,
                          ignore_index: int = 255) -> dict[str, torch.Tensor]:
    """logits (B, K, H, W), labels (B, H, W) -> ``{"loss_ce": pixel cross-entropy,
    "acc_seg": pixel accuracy over the non-ignored pixels (0 when there are none, no grad)}``."""
    loss = seg_cross_entropy(logits, labels, ignore_index)
    with torch.no_grad():
        keep = labels != ignore_index
        acc = (logits.argmax(1)[keep] == labels[keep]).float().mean()
    return {"loss_ce": loss, "acc_seg": acc.nan_to_num(0.0)}
