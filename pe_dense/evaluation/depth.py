"""Monocular depth metrics, computed per image and then averaged over images.

This follows the standard NYUv2 evaluation (ZoeDepth ``compute_errors``, the Monocular Depth
Estimation Toolbox and DINOv3 agree; ``docs/dense_protocols.md`` section 3.3):

* valid pixels: ``min_depth < gt < max_depth`` (1e-3..10 m for NYU), finite, and inside the
  Eigen crop (rows 45:471, cols 41:601 of a 480x640 map);
* the prediction is clipped to ``[min_depth, max_depth]`` (NaN -> min, +inf -> max);
* per image: ``thresh = max(gt/pred, pred/gt)``; delta1/2/3 = mean(thresh < 1.25**k);
  AbsRel = mean(|gt - pred| / gt); SqRel = mean((gt - pred)**2 / gt); RMSE;
  RMSE_log = sqrt(mean((log gt - log pred)**2)); log10 = mean|log10 gt - log10 pred|;
  SILog = 100 sqrt(mean(e**2) - mean(e)**2) with e = log pred - log gt;
* the reported number is the mean of the per-image values (not pooled over pixels).

Images without any valid pixel are skipped, counted and logged.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

__all__ = ["METRIC_NAMES", "eigen_crop_mask", "depth_errors", "image_errors", "average_errors",
           "DepthEvaluator"]

log = logging.getLogger(__name__)

METRIC_NAMES = ("d1", "d2", "d3", "abs_rel", "sq_rel", "rmse", "rmse_log", "log10", "silog")
# Eigen et al. crop on the 480x640 NYUv2 frame: rows 45..470, cols 41..600.
EIGEN_CROP = (45, 471, 41, 601)
NYU_SIZE = (480, 640)


def eigen_crop_mask(height: int, width: int, device: torch.device | None = None) -> torch.Tensor:
    """(H, W) bool mask of the Eigen crop; exact at 480x640, scaled proportionally otherwise."""
    top, bottom, left, right = EIGEN_CROP
    sy, sx = height / NYU_SIZE[0], width / NYU_SIZE[1]
    mask = torch.zeros(height, width, dtype=torch.bool, device=device)
    mask[round(top * sy): round(bottom * sy), round(left * sx): round(right * sx)] = True
    return mask


def depth_errors(pred: torch.Tensor, gt: torch.Tensor, min_depth: float = 1e-3,
                 max_depth: float = 10.0, eigen_crop: bool = True) -> dict[str, float] | None:
    """The nine standard errors for one image.

    pred, gt: (H, W) depth in metres, same size (resize the prediction first). Returns None
    when the image has no valid ground-truth pixel.
    """
    if pred.shape != gt.shape or pred.ndim != 2:
        raise ValueError(f"expected (H, W) prediction and ground truth of the same size, got "
                         f"{tuple(pred.shape)} and {tuple(gt.shape)}")
    gt = gt.double()
    pred = torch.nan_to_num(pred.double(), nan=min_depth, posinf=max_depth, neginf=min_depth)
    pred = pred.clamp(min_depth, max_depth)
    valid = torch.isfinite(gt) & (gt > min_depth) & (gt < max_depth)
    if eigen_crop:
        valid &= eigen_crop_mask(*gt.shape, device=gt.device)
    if not bool(valid.any()):
        return None
    g, p = gt[valid], pred[valid]
    thresh = torch.maximum(g / p, p / g)
    err = torch.log(p) - torch.log(g)
    return {
        "d1": (thresh < 1.25).double().mean().item(),
        "d2": (thresh < 1.25**2).double().mean().item(),
        "d3": (thresh < 1.25**3).double().mean().item(),
        "abs_rel": ((g - p).abs() / g).mean().item(),
        "sq_rel": ((g - p) ** 2 / g).mean().item(),
        "rmse": ((g - p) ** 2).mean().sqrt().item(),
        "rmse_log": (err**2).mean().sqrt().item(),
        "log10": (torch.log10(g) - torch.log10(p)).abs().mean().item(),
        "silog": 100 * math.sqrt(max((err**2).mean().item() - err.mean().item() ** 2, 0.0)),
    }


def image_errors(pred: torch.Tensor, gt: torch.Tensor, min_depth: float = 1e-3,
                 max_depth: float = 10.0, eigen_crop: bool = True) -> dict[str, float] | None:
    """:func:`depth_errors` of one (H, W) prediction, resized bilinearly to the (H', W')
    ground truth first when the sizes differ. None when no ground-truth pixel is valid."""
    if pred.shape != gt.shape:
        pred = F.interpolate(pred[None, None].float(), size=tuple(gt.shape), mode="bilinear",
                             align_corners=False)[0, 0]
    return depth_errors(pred.cpu(), gt.cpu(), min_depth, max_depth, eigen_crop)


def average_errors(per_image: Sequence[dict[str, float] | None]) -> dict[str, float]:
    """Per-image errors (None = an image without valid ground truth) -> the mean of each of
    :data:`METRIC_NAMES` over the valid images, plus ``num_images`` and ``skipped``."""
    valid = [e for e in per_image if e is not None]
    skipped = len(per_image) - len(valid)
    if not valid:
        raise RuntimeError(f"no image had valid ground truth ({skipped} skipped): check the "
                           "depth scale (metres) and min/max depth")
    out = {k: sum(e[k] for e in valid) / len(valid) for k in METRIC_NAMES}
    out["num_images"] = len(valid)
    out["skipped"] = skipped
    return out


@dataclass
class DepthEvaluator:
    """Per-image errors averaged over images.

    >>> ev = DepthEvaluator(min_depth=1e-3, max_depth=10.0, eigen_crop=True)
    >>> ev.update(pred, gt)        # (H, W) or (B, H, W) metres
    >>> ev.compute()["abs_rel"]
    """

    min_depth: float = 1e-3
    max_depth: float = 10.0
    eigen_crop: bool = True
    per_image: list[dict[str, float]] = field(default_factory=list)
    skipped: int = 0

    def reset(self) -> None:
        self.per_image = []
        self.skipped = 0

    def update(self, pred: torch.Tensor, gt: torch.Tensor) -> None:
        if pred.ndim == 2:
            pred, gt = pred[None], gt[None]
        for p, g in zip(pred, gt, strict=True):
            errors = depth_errors(p.cpu(), g.cpu(), self.min_depth, self.max_depth,
                                  self.eigen_crop)
            if errors is None:
                self.skipped += 1
                log.warning("depth evaluation: image without valid ground truth in "
                            "(%g, %g) m skipped (%d so far)", self.min_depth, self.max_depth,
                            self.skipped)
            else:
                self.per_image.append(errors)

    def compute(self) -> dict[str, float]:
        return average_errors([*self.per_image, *[None] * self.skipped])
