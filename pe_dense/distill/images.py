"""Image folders for distillation: listing, train/held-out split, reading at the base size.

Folders are searched recursively for image files (``.jpg``, ``.jpeg``, ``.png``, ``.bmp``,
``.webp``), so a folder of video frames (``bedroom/00000.jpg`` ...) or a tree of sequences works
as is. Images are read with :func:`pe_dense.data.images.read_rgb` and resized to a square base
size; they stay uint8 (the model normalises at entry).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import torch

from pe_dense.data.images import read_square

__all__ = ["IMAGE_EXTENSIONS", "list_images", "split_files", "load_image"]

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


def load_image(path: str | os.PathLike, image_size: int) -> torch.Tensor:
    """Read an image as RGB and resize it (PIL bilinear) -> (3, S, S) uint8, S = image_size."""
    return read_square(path, image_size)
