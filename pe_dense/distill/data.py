"""Unlabelled images for distillation: image folders and video frame folders.

Folders are searched recursively for image files (``.jpg``, ``.jpeg``, ``.png``, ``.bmp``,
``.webp``), so a folder of video frames (``bedroom/00000.jpg`` ...) or a tree of sequences
works as is. Every image is resized to ``image_size`` x ``image_size`` (PE's [-1, 1]
normalisation); random crops, flips and masking are applied later, per step, by the trainer
(:mod:`pe_dense.distill.views`), so cached teacher targets can follow the same views.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from pe_dense.engine.registry import DATASETS

__all__ = ["IMAGE_EXTENSIONS", "list_images", "split_files", "load_image",
           "DistillImageDataset"]

log = logging.getLogger(__name__)

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp")


def list_images(roots: str | os.PathLike | Sequence[str | os.PathLike]) -> list[str]:
    """Sorted absolute paths of the images under each root (a folder or a single image)."""
    roots = [roots] if isinstance(roots, (str, os.PathLike)) else list(roots)
    files: list[str] = []
    for root in roots:
        path = Path(root).expanduser()
        if path.is_file():
            files.append(str(path.resolve()))
        elif path.is_dir():
            found = sorted(str(p.resolve()) for p in path.rglob("*")
                           if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file())
            if not found:
                raise FileNotFoundError(f"no images ({', '.join(IMAGE_EXTENSIONS)}) under {path}")
            files.extend(found)
        else:
            raise FileNotFoundError(f"image folder {path} does not exist")
    return files


def split_files(files: list[str], split: str = "all", holdout_every: int = 0) -> list[str]:
    """``"train"`` drops every ``holdout_every``-th file (indices k-1, 2k-1, ...), ``"val"``
    keeps only those, ``"all"`` keeps everything. ``holdout_every=0`` means no held-out set."""
    if split not in ("all", "train", "val"):
        raise ValueError(f"split={split!r} is not one of ('all', 'train', 'val')")
    if split == "all" or holdout_every <= 0:
        if split == "val":
            raise ValueError("split='val' needs holdout_every > 0")
        return list(files)
    val = [i % holdout_every == holdout_every - 1 for i in range(len(files))]
    return [f for f, v in zip(files, val, strict=True) if v == (split == "val")]


def load_image(path: str, image_size: int) -> torch.Tensor:
    """Read an image as RGB and resize it (bilinear) -> (3, S, S) float32 in [-1, 1]."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            rgb = im.convert("RGB").resize((image_size, image_size), Image.BILINEAR)
    except (FileNotFoundError, UnidentifiedImageError, OSError) as exc:
        raise ValueError(f"cannot read image {path}: {exc}") from exc
    return torch.from_numpy(np.asarray(rgb).copy()).permute(2, 0, 1).float().div(127.5).sub(1.0)


@DATASETS.register_module()
class DistillImageDataset(Dataset):
    """Images (and cached teacher targets, when ``cache_dir`` holds a complete cache).

    Items: ``{"image": (3, S, S) float32 in [-1, 1], "index": int,
    "targets": {teacher: (C, g, g) float32}}`` (``targets`` only with a cache).
    """

    def __init__(self, roots: str | Sequence[str], image_size: int = 448, split: str = "all",
                 holdout_every: int = 0, cache_dir: str | None = None,
                 teachers: Sequence[dict[str, Any]] | None = None,
                 keep_in_memory: bool = False) -> None:
        """``cache_dir``: read teacher targets from this cache when it exists (else teachers
        run online). ``teachers``: the model's teacher configs; cached teachers must have been
        written with the same config (a changed teacher is an error, not a silent mismatch).
        ``keep_in_memory``: keep decoded, resized images (3 x S x S float32 each) after the
        first read, for small datasets."""
        self.files = split_files(list_images(roots), split, holdout_every)
        if not self.files:
            raise ValueError(f"split {split!r} of {roots} is empty (holdout_every={holdout_every})")
        self.image_size = image_size
        self.keep_in_memory = keep_in_memory
        self._images: dict[int, torch.Tensor] = {}
        self.cache = None
        if cache_dir is not None and (Path(cache_dir) / "manifest.json").is_file():
            from pe_dense.distill.cache import TargetCache, check_teachers

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
