"""Frozen-backbone block maps for the probes: one backbone pass per image gives every swept
block, through the backbone contract only (``normalize``, ``forward_intermediates``)."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import torch
import torch.nn.functional as F

from pe_dense.backbone.contract import Backbone
from pe_dense.data.transforms import resize_to_multiple

__all__ = ["block_maps", "TrainingItems", "resize_target"]

log = logging.getLogger(__name__)


@torch.no_grad()
def block_maps(backbone: Backbone, image: torch.Tensor, indices: Sequence[int], short_side: int,
               norm: bool = False) -> list[torch.Tensor]:
    """image: (3, H, W) uint8 RGB -> one (C, h, w) float32 map per block of ``indices``: the
    image resized to short side ``short_side`` (sides multiples of the patch, bilinear),
    normalised with the backbone's own statistics; h = resized H / patch."""
    param = next(backbone.parameters())
    x = resize_to_multiple(image[None], short_side, backbone.patch_size)
    x = backbone.normalize(x).to(device=param.device, dtype=param.dtype)
    maps = backbone.forward_intermediates(x, indices=list(indices), norm=norm)
    return [m[0].float() for m in maps]


def resize_target(target: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """A label map (H, W) or a depth map (1, H, W) resized to ``size`` with nearest
    neighbours (no new classes, no depth mixed with the 0 of missing measurements)."""
    if tuple(target.shape[-2:]) == tuple(size):
        return target
    x = target.reshape(1, 1, *target.shape[-2:]).float()
    y = F.interpolate(x, size=tuple(size), mode="nearest")
    return y.reshape(*target.shape[:-2], *size).to(target.dtype)


class TrainingItems:
    """The training items of a probe: ``items[i]`` -> (one (C, h, w) map per block, the
    target ``dataset[keys[i]][target_key]`` resized to the input the maps came from, (h p,
    w p)). Items are kept in memory while they fit in ``budget_bytes``; beyond it they are
    recomputed (image read, one backbone pass) each time they are asked for."""

    def __init__(self, dataset: Sequence[dict], keys: Sequence[int], target_key: str,
                 backbone: Backbone, indices: Sequence[int], short_side: int, norm: bool,
                 budget_bytes: int) -> None:
        self.dataset, self.keys, self.target_key = dataset, list(keys), target_key
        self.backbone, self.indices = backbone, list(indices)
        self.short_side, self.norm = short_side, norm
        self.budget, self.used = budget_bytes, 0
        self.cache: dict[int, tuple[list[torch.Tensor], torch.Tensor]] = {}
        self.passes = 0  # backbone passes so far
        self._warned = False

    def __len__(self) -> int:
        return len(self.keys)

    def __getitem__(self, i: int) -> tuple[list[torch.Tensor], torch.Tensor]:
        if i in self.cache:
            return self.cache[i]
        sample = self.dataset[self.keys[i]]
        maps = block_maps(self.backbone, sample["image"], self.indices, self.short_side,
                          self.norm)
        self.passes += 1
        p = self.backbone.patch_size
        target = resize_target(sample[self.target_key], (maps[0].shape[-2] * p,
                                                         maps[0].shape[-1] * p))
        item = (maps, target.to(maps[0].device))
        size = sum(t.numel() * t.element_size() for t in (*maps, target))
        if self.used + size <= self.budget:
            self.cache[i] = item
            self.used += size
        elif not self._warned:
            self._warned = True
            log.info("training features exceed the cache (%d MiB): recomputed each step",
                     self.budget // 2**20)
        return item
