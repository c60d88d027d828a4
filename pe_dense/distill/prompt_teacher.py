"""What every point-prompt mask teacher shares: the prompt grid, the per-image loop and the
resampling of the stacked mask logits to the student's grid.

A point-prompt teacher answers each point of a ``points_per_side`` x ``points_per_side`` grid
(cell centres, row-major) with one mask-logit map; the N = ``points_per_side``^2 maps of an
image are stacked into an (N, h, w) "feature map" and resampled to the student's token grid
(PE paper, section 5). Subclasses:

- :class:`pe_dense.distill.sam2_teacher.SAM2MaskTeacher` (``kind="sam2"``): SAM 2's raw logits;
- :class:`pe_dense.distill.gt_teacher.GroundTruthMaskTeacher` (``kind="gt_masks"``): the
  ground-truth instance mask under each point as +/- ``logit`` (a stand-in for a perfect SAM).

A subclass defines :meth:`PointPromptTeacher.prepare` (the batch's shared work, e.g. SAM's image
encoder, or reading mask files) and :meth:`PointPromptTeacher.prompt_logits` (one image's
(1, N, h, w) logits). Teachers that must know which file each image came from set
``needs_files = True``: the target cache writer then passes ``files=`` (the batch's image paths).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from pe_dense.distill.views import resample_tokens

__all__ = ["PointPromptTeacher", "fit_aspect"]


class PointPromptTeacher(nn.Module):
    """Base of the point-prompt mask teachers: ``forward(images, grid, files=None) -> (B, N,
    gh, gw)`` float32 mask logits, N = ``points_per_side``^2 (``out_channels``).

    ``image_size``: the side of the square frame the prompts are given in by default (SAM's
    input size), or None when each image has its own frame (pass ``size`` to
    :meth:`point_grid`). ``needs_files``: whether ``forward`` needs the batch's image paths.
    """

    needs_files = False

    def __init__(self, points_per_side: int, image_size: int | None = None) -> None:
        super().__init__()
        if points_per_side < 1:
            raise ValueError(f"points_per_side={points_per_side} must be >= 1")
        self.points_per_side = points_per_side
        self.image_size = image_size
        self.out_channels = points_per_side**2

    def point_grid(self, device: torch.device, size: tuple[int, int] | None = None
                   ) -> torch.Tensor:
        """(N, 2) prompt coordinates (x, y) in pixels of a frame of ``size`` (h, w) (default
        ``image_size`` x ``image_size``): cell centres of the grid, row-major."""
        if size is None:
            if self.image_size is None:
                raise ValueError(f"{type(self).__name__} has no fixed image_size: pass size")
            size = (self.image_size, self.image_size)
        n = self.points_per_side
        cells = torch.arange(n, device=device, dtype=torch.float32) + 0.5
        ys, xs = torch.meshgrid(cells * (size[0] / n), cells * (size[1] / n), indexing="ij")
        return torch.stack([xs.flatten(), ys.flatten()], dim=1)

    def prepare(self, images: torch.Tensor, files: Sequence[str] | None) -> Any:
        """The batch's shared work before the per-image prompts (e.g. an image encoder).
        images: (B, 3, H, W) in [-1, 1]; files: the images' paths or None."""
        raise NotImplementedError

    def prompt_logits(self, state: Any, index: int) -> torch.Tensor:
        """Image ``index`` of the batch -> (1, N, h, w) float32 mask logits, one map per
        prompt of :meth:`point_grid`. ``state``: what :meth:`prepare` returned."""
        raise NotImplementedError

    @torch.no_grad()
    def forward(self, images: torch.Tensor, grid: tuple[int, int],
                files: Sequence[str] | None = None) -> torch.Tensor:
        """images: (B, 3, H, W) in [-1, 1] -> (B, N, gh, gw) float32 mask logits; ``files``:
        the images' paths (needed when ``needs_files``)."""
        state = self.prepare(images, files)
        out = []
        for i in range(images.shape[0]):
            stacked = self.prompt_logits(state, i)
            out.append(resample_tokens(fit_aspect(stacked, images.shape[-2:]), grid))
        return torch.cat(out)


def fit_aspect(maps: torch.Tensor, hw: tuple[int, int]) -> torch.Tensor:
    """(B, N, h', w') logits -> the aspect ratio of an input of size ``hw`` (bilinear, longer
    side kept). SAM sees a square resize, so its square logits are stretched back to the
    input's aspect; maps already at the input's aspect ratio pass unchanged."""
    h, w = hw
    mh, mw = maps.shape[-2:]
    if mh * w == mw * h:
        return maps
    s = max(mh, mw)
    size = (s, max(1, round(s * w / h))) if w > h else (max(1, round(s * h / w)), s)
    return F.interpolate(maps, size=size, mode="bilinear", align_corners=False)
