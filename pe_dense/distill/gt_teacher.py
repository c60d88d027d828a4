"""Ground-truth instance masks as a point-prompt mask teacher: a stand-in for a perfect SAM.

For each image and each point of the ``points_per_side`` x ``points_per_side`` prompt grid
(:class:`pe_dense.distill.prompt_teacher.PointPromptTeacher`), the answer is the mask of the
segment under the point in the image's instance-id PNG (every id is a segment, 0 = background
included), written as SAM 2-style logits: ``+logit`` inside, ``-logit`` outside, at the mask's
resolution; the N stacked maps are resampled to the student's grid exactly as the SAM 2
teacher's logits are.

The masks belong to files, not to pixels, so this teacher must know which image it sees
(``needs_files = True``): ``pe-dense distill-cache CONFIG`` passes the paths and stores the targets
of the base images; training then resamples them through each view's crop box and flip, like
every cached teacher. Called without files (online, in training) it raises and says to write the
cache first.

Config (``build_teacher(dict(kind="gt_masks", ...))``): ``masks`` (the folder of instance-id PNGs,
``<masks>/<image stem>.png``), ``points_per_side`` (32) and ``logit`` (8.0).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from pe_dense.distill.prompt_teacher import PointPromptTeacher
from pe_dense.utils.modules import freeze

__all__ = ["GroundTruthMaskTeacher", "build_gt_teacher", "MASK_EXTENSIONS"]

MASK_EXTENSIONS = (".png", ".PNG")


class GroundTruthMaskTeacher(PointPromptTeacher):
    """Instance-id PNGs -> (B, N, gh, gw) mask logits (+/- ``logit``), N = ``points_per_side``^2.

    ``masks``: folder of single-channel instance-id PNGs named like the images (same stem); a
    mask whose size differs from the images the teacher is given (the dataset's base size) is
    resized to it with nearest neighbours (pixel centres), as the image was resized. The prompt
    grid is laid on each mask's frame (cell centres, row-major, like SAM's square frame).
    """

    needs_files = True

    def __init__(self, masks: str | os.PathLike, points_per_side: int = 32,
                 logit: float = 8.0) -> None:
        super().__init__(points_per_side)
        self.masks = Path(masks).expanduser().resolve()
        if not self.masks.is_dir():
            raise FileNotFoundError(f"gt_masks teacher: mask folder {self.masks} does not exist "
                                    "(masks= is a folder of instance-id PNGs named like the "
                                    "images)")
        if logit <= 0:
            raise ValueError(f"logit={logit} must be > 0 (+logit inside, -logit outside)")
        self.logit = float(logit)
        freeze(self)

    def describe(self) -> dict[str, Any]:
        return {"kind": "gt_masks", "masks": str(self.masks),
                "points_per_side": self.points_per_side, "logit": self.logit,
                "out_channels": self.out_channels}

    def mask_path(self, image: str | os.PathLike) -> Path:
        """The instance-id PNG of ``image``: ``<masks>/<image stem>.png``."""
        stem = Path(image).stem
        for ext in MASK_EXTENSIONS:
            path = self.masks / f"{stem}{ext}"
            if path.is_file():
                return path
        raise FileNotFoundError(f"gt_masks teacher: no instance mask for image {image} in "
                                f"{self.masks} (expected {stem}.png)")

    def read_mask(self, image: str | os.PathLike, size: tuple[int, int]) -> torch.Tensor:
        """``image``'s instance ids as an (H, W) int64 tensor, resized (nearest) to ``size``."""
        from pe_dense.data.segmentation import read_label

        ids = torch.from_numpy(read_label(self.mask_path(image)))
        if tuple(ids.shape) != tuple(size):
            ids = F.interpolate(ids[None, None].double(), size=tuple(size),
                                mode="nearest-exact")[0, 0].long()
        return ids

    def prepare(self, images: torch.Tensor, files: Sequence[str] | None) -> list[torch.Tensor]:
        """The batch's instance-id maps, (H, W) int64 each on the images' device."""
        if files is None:
            raise ValueError("the gt_masks teacher reads each image's instance mask, so it needs "
                             "the image files: its targets come from the target cache; run "
                             "`pe-dense distill-cache CONFIG` first (with cache_dir set in the "
                             "datasets), then `pe-dense distill CONFIG`")
        if len(files) != images.shape[0]:
            raise ValueError(f"{len(files)} files for a batch of {images.shape[0]} images")
        size = tuple(images.shape[-2:])
        return [self.read_mask(f, size).to(images.device) for f in files]

    def prompt_logits(self, state: list[torch.Tensor], index: int) -> torch.Tensor:
        """Image ``index`` -> (1, N, H, W) float32: +logit on the segment under each prompt,
        -logit elsewhere."""
        ids = state[index]
        h, w = ids.shape
        points = self.point_grid(ids.device, (h, w))
        x = points[:, 0].long().clamp(0, w - 1)
        y = points[:, 1].long().clamp(0, h - 1)
        inside = ids[None] == ids[y, x][:, None, None]  # (N, H, W)
        logits = torch.full(inside.shape, -self.logit, dtype=torch.float32, device=ids.device)
        return logits.masked_fill_(inside, self.logit)[None]


def build_gt_teacher(cfg: dict[str, Any]) -> GroundTruthMaskTeacher:
    """A :class:`GroundTruthMaskTeacher` from a ``kind="gt_masks"`` config (without ``kind``
    and the trainer's keys)."""
    cfg = dict(cfg)
    if "masks" not in cfg:
        raise ValueError("gt_masks teacher needs masks=<folder of instance-id PNGs named like "
                         "the images>, e.g. masks='world/train/instances'")
    known = ("masks", "points_per_side", "logit")
    unknown = sorted(set(cfg) - set(known))
    if unknown:
        raise ValueError(f"gt_masks teacher: unknown options {unknown}; it takes {known}")
    return GroundTruthMaskTeacher(**cfg)
