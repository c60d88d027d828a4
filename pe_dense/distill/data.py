"""The distillation dataset: base images (uint8) from image and video-frame folders, with cached
teacher targets when a complete cache exists.

Every image is resized to ``image_size`` x ``image_size`` (:mod:`pe_dense.distill.images`);
random crops, flips, colour jitter and masking are applied later, per step, by the model
(:mod:`pe_dense.distill.views`), so cached teacher targets can follow the same views.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Dataset

from pe_dense.distill.cache import TargetCache, check_teachers
from pe_dense.distill.images import list_images, load_image, split_files

__all__ = ["DistillImageDataset"]

log = logging.getLogger(__name__)


class DistillImageDataset(Dataset):
    """Images (and cached teacher targets, when ``cache_dir`` holds a complete cache).

    Items: ``{"image": (3, S, S) uint8 RGB, "index": int, "targets": {teacher: (C, g, g)
    float32}}`` (``targets`` only with a cache).
    """

    def __init__(self, roots: str | Sequence[str], image_size: int = 448, split: str = "all",
                 holdout_every: int = 0, cache_dir: str | None = None,
                 teachers: Sequence[dict[str, Any]] | None = None,
                 keep_in_memory: bool = False) -> None:
        """``cache_dir``: read teacher targets from this cache when it exists (else teachers
        run online). ``teachers``: the model's teacher configs; cached teachers must have been
        written with the same config (a changed teacher is an error, not a silent mismatch).
        ``keep_in_memory``: keep decoded, resized images (3 x S x S uint8 each) after the
        first read, for small datasets."""
        self.files = split_files(list_images(roots), split, holdout_every)
        if not self.files:
            raise ValueError(f"split {split!r} of {roots} is empty (holdout_every={holdout_every})")
        self.image_size = image_size
        self.keep_in_memory = keep_in_memory
        self._images: dict[int, torch.Tensor] = {}
        self.cache = None
        if cache_dir is not None and (Path(cache_dir) / "manifest.json").is_file():
            names = check_teachers(cache_dir, teachers) if teachers is not None else None
            self.cache = TargetCache(cache_dir, teachers=names)
            self.cache.check_covers(self.files, image_size)
            log.info("teacher targets of %s read from cache %s", self.cache.teachers, cache_dir)
        elif cache_dir is not None:
            log.info("no target cache at %s: teachers run online (pe-dense distill-cache "
                     "CONFIG writes it)", cache_dir)
        log.info("distillation data: %d images from %s (%s)", len(self.files), roots, split)

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> dict[str, Any]:
        image = self._images.get(index)
        if image is None:
            image = load_image(self.files[index], self.image_size)
            if self.keep_in_memory:
                self._images[index] = image
        item: dict[str, Any] = {"image": image.clone(), "index": index}
        if self.cache is not None:
            item["targets"] = {k: v.float() for k, v in self.cache.get(self.files[index]).items()}
        return item
