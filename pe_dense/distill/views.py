"""Random views (crop box + flip + colour jitter) applied identically to images and target maps.

A view is a crop box in normalised image coordinates plus a horizontal flip. Student images,
online teachers and cached teacher maps are all resampled through the same box with
:func:`resample_box`, so every target stays aligned with the student's tokens;
:func:`resample_tokens` brings a teacher's maps to the student's token grid.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

__all__ = ["Views", "sample_views", "resample_box", "resample_tokens", "color_jitter"]


@dataclass
class Views:
    """boxes: (B, 4) float ``(x0, y0, x1, y1)`` in [0, 1]; flips: (B,) bool."""

    boxes: torch.Tensor
    flips: torch.Tensor

    @classmethod
    def identity(cls, batch: int) -> Views:
        return cls(torch.tensor([[0.0, 0.0, 1.0, 1.0]]).repeat(batch, 1),
                   torch.zeros(batch, dtype=torch.bool))


def sample_views(batch: int, scale: tuple[float, float] = (0.35, 1.0),
                 ratio: tuple[float, float] = (3 / 4, 4 / 3), flip: bool = True,
                 generator: torch.Generator | None = None) -> Views:
    """Random-resized-crop boxes (area fraction in ``scale``, aspect in ``ratio``) and flips."""
    u = torch.rand(batch, 5, generator=generator)
    area = scale[0] + (scale[1] - scale[0]) * u[:, 0]
    log_r = math.log(ratio[0]) + (math.log(ratio[1]) - math.log(ratio[0])) * u[:, 1]
    aspect = torch.exp(log_r)
    w = torch.sqrt(area * aspect).clamp(max=1.0)
    h = torch.sqrt(area / aspect).clamp(max=1.0)
    x0 = (1.0 - w) * u[:, 2]
    y0 = (1.0 - h) * u[:, 3]
    flips = (u[:, 4] < 0.5) if flip else torch.zeros(batch, dtype=torch.bool)
    return Views(torch.stack([x0, y0, x0 + w, y0 + h], dim=1), flips)


def resample_box(maps: torch.Tensor, views: Views, size: tuple[int, int],
                 mode: str = "bilinear") -> torch.Tensor:
    """Crop each map to its box, resize to ``size`` and flip where asked.

    maps: (B, C, H, W) (images or teacher maps); returns (B, C, size[0], size[1]), same dtype.
    Sampling is at output cell centres (``align_corners=False`` convention), so a full box with
    no flip reproduces ``F.interpolate(maps, size, mode=mode)`` for downsampling by integers.
    """
    b = maps.shape[0]
    boxes = views.boxes.to(device=maps.device, dtype=torch.float32)
    oh, ow = size
    ys = (torch.arange(oh, device=maps.device, dtype=torch.float32) + 0.5) / oh
    xs = (torch.arange(ow, device=maps.device, dtype=torch.float32) + 0.5) / ow
    x0, y0, x1, y1 = boxes.unbind(1)
    gx = x0[:, None] + (x1 - x0)[:, None] * xs[None]  # (B, ow) in [0, 1]
    gy = y0[:, None] + (y1 - y0)[:, None] * ys[None]
    flips = views.flips.to(maps.device)
    gx = torch.where(flips[:, None], gx.flip(1), gx)
    grid = torch.stack([gx[:, None, :].expand(b, oh, ow), gy[:, :, None].expand(b, oh, ow)], -1)
    out = F.grid_sample(maps.float(), grid * 2 - 1, mode=mode, padding_mode="border",
                        align_corners=False)
    return out.to(maps.dtype)


def color_jitter(images: torch.Tensor, strength: float = 0.3,
                 generator: torch.Generator | None = None) -> torch.Tensor:
    """Random brightness, contrast and saturation in ``1 +- strength`` per image.

    images: (B, 3, H, W) in [-1, 1] -> same shape, clamped to [-1, 1].
    """
    if strength <= 0:
        return images
    b = images.shape[0]
    f = 1.0 + strength * (2 * torch.rand(b, 3, generator=generator) - 1)
    f = f.to(images.device, images.dtype)
    x = (images + 1) / 2
    x = x * f[:, 0, None, None, None]
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    x = (x - mean) * f[:, 1, None, None, None] + mean
    grey = x.mean(dim=1, keepdim=True)
    x = (x - grey) * f[:, 2, None, None, None] + grey
    return (x.clamp(0, 1) * 2 - 1)


def resample_tokens(maps: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
    """(B, C, h, w) -> (B, C, gh, gw): identity when equal, else area (downsampling by an
    integer factor) or bilinear interpolation."""
    h, w = maps.shape[-2:]
    if (h, w) == tuple(grid):
        return maps
    if h % grid[0] == 0 and w % grid[1] == 0:
        return F.adaptive_avg_pool2d(maps, grid)
    return F.interpolate(maps, size=grid, mode="bilinear", align_corners=False)
