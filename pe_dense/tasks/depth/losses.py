"""Depth losses: SiLog and multi-scale gradient matching (``docs/dense_protocols.md`` 3.1).

Predictions and targets are in metres, (B, 1, H, W) or (B, H, W); pixels outside
``(min_depth, max_depth]`` or non-finite in the target are ignored (the collate pads depth with
0, so padding is ignored too).
"""

from __future__ import annotations

import torch

__all__ = ["valid_depth_mask", "silog_loss", "gradient_loss"]


def valid_depth_mask(target: torch.Tensor, min_depth: float = 1e-3,
                     max_depth: float = 10.0) -> torch.Tensor:
    """Bool mask of usable ground-truth pixels (finite, min_depth < d <= max_depth)."""
    return torch.isfinite(target) & (target > min_depth) & (target <= max_depth)


def silog_loss(pred: torch.Tensor, target: torch.Tensor, variance_focus: float = 0.15,
               min_depth: float = 1e-3, max_depth: float = 10.0, eps: float = 1e-3,
               scale: float = 1.0, mean_only: bool = False) -> torch.Tensor:
    """Scale-invariant log loss ``scale * sqrt(Var(g) + variance_focus * mean(g)**2)``.

    ``g = log(pred + eps) - log(target + eps)`` over the valid pixels of the whole batch, with
    the unbiased variance, as DINOv2's ``SigLoss`` (``scale=10, eps=1e-7`` gives ZoeDepth's
    ``SILogLoss``). ``mean_only`` is DINOv2's warm-up form ``sqrt(variance_focus * mean(g)**2)``.
    Computed in float32 even under autocast. Returns a scalar; zero (with grad) when no pixel
    is valid.
    """
    if pred.shape != target.shape:
        raise ValueError(f"prediction {tuple(pred.shape)} and target {tuple(target.shape)} "
                         "differ: resize the prediction to the target first")
    valid = valid_depth_mask(target, min_depth, max_depth)
    if int(valid.sum()) < 2:
        return pred.sum() * 0.0
    with torch.autocast(device_type=pred.device.type, enabled=False):
        g = torch.log(pred[valid].float() + eps) - torch.log(target[valid].float() + eps)
        focus = variance_focus * g.mean() ** 2
        loss = focus if mean_only else g.var() + focus
        return scale * torch.sqrt(loss.clamp_min(1e-12))


def gradient_loss(pred: torch.Tensor, target: torch.Tensor, scales: int = 4,
                  min_depth: float = 1e-3, max_depth: float = 10.0,
                  eps: float = 1e-3) -> torch.Tensor:
    """Multi-scale gradient-matching loss on log depth (MegaDepth / DINOv2 ``GradientLoss``).

    At each of ``scales`` scales (stride 2**k subsampling), the L1 norm of the horizontal and
    vertical differences of ``log pred - log target``, over pixel pairs where both target
    pixels are valid, divided by the number of valid pixels. Returns a scalar.
    """
    if pred.shape != target.shape:
        raise ValueError(f"prediction {tuple(pred.shape)} and target {tuple(target.shape)} differ")
    if pred.ndim == 3:
        pred, target = pred[:, None], target[:, None]
    valid = valid_depth_mask(target, min_depth, max_depth)
    diff = torch.log(pred.float().clamp_min(0) + eps) - torch.log(
        target.float().nan_to_num(0).clamp_min(0) + eps)
    diff = torch.where(valid, diff, torch.zeros_like(diff))
    total = pred.sum() * 0.0
    for k in range(scales):
        step = 2**k
        d, m = diff[..., ::step, ::step], valid[..., ::step, ::step].float()
        n = m.sum()
        if n < 1:
            continue
        gx = (d[..., :, 1:] - d[..., :, :-1]).abs() * m[..., :, 1:] * m[..., :, :-1]
        gy = (d[..., 1:, :] - d[..., :-1, :]).abs() * m[..., 1:, :] * m[..., :-1, :]
        total = total + (gx.sum() + gy.sum()) / n
    return total
