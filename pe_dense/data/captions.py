"""Captioned images for contrastive image-text training: a folder of images and a caption file.

Layout of a captioned folder (the synthetic world's splits are written this way,
:mod:`pe_dense.data.world`; a user's own captioned images need only the same two things)::

    ROOT/images/<file>           any image the one reader opens (:func:`read_rgb`)
    ROOT/captions.json           [{"file": "<file>", "caption": "a red circle ..."}, ...]
                                 (extra keys are ignored)

Items are ``{"image": (3, S, S) uint8, "caption": str, "index": int}``: every image squashed to
``image_size`` (no flips or crops: captions may say "left of").
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Dataset

from pe_dense.data.images import read_square

__all__ = ["CaptionDataset", "read_captions"]


def read_captions(root: str | os.PathLike) -> list[dict[str, str]]:
    """The ``(file, caption)`` records of a captioned folder, checked: a clear error for a
    missing folder or file, a record without ``file`` / ``caption``, or an empty list."""
    root = Path(root)
    path = root / "captions.json"
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} not found: a captioned folder holds images/ and captions.json "
            '([{"file": ..., "caption": ...}]); write a synthetic one with '
            "python tools/make_world.py OUT")
    try:
        records = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path} is not valid JSON ({exc})") from exc
    if not isinstance(records, list) or not records:
        raise ValueError(f"{path} must be a non-empty JSON list of "
                         '{"file": ..., "caption": ...} records')
    for i, rec in enumerate(records):
        if not isinstance(rec, dict) or not isinstance(rec.get("file"), str) \
                or not isinstance(rec.get("caption"), str):
            raise ValueError(f"{path}: record {i} ({rec!r}) needs a 'file' and a 'caption' "
                             "string")
    return [{"file": r["file"], "caption": r["caption"]} for r in records]


class CaptionDataset(Dataset):
    """A captioned folder (see the module docstring). ``max_items`` keeps the first records
    (0: all); ``keep_in_memory`` keeps decoded images after the first read (small datasets:
    3 x S x S bytes each)."""

    def __init__(self, root: str | os.PathLike, image_size: int = 224, max_items: int = 0,
                 keep_in_memory: bool = False) -> None:
        self.root = Path(root)
        records = read_captions(self.root)
        self.records = records[:max_items] if max_items else records
        # The first 1000 files are checked here; a later missing one fails when read, by name.
        missing = [r["file"] for r in self.records[:1000]
                   if not (self.root / "images" / r["file"]).is_file()]
        if missing:
            raise FileNotFoundError(f"{len(missing)} captioned images are missing from "
                                    f"{self.root / 'images'} (first: {missing[0]})")
        self.image_size = image_size
        self.keep_in_memory = keep_in_memory
        self._images: dict[int, torch.Tensor] = {}
        self.metainfo = {"root": str(self.root), "captions": len(self.records)}

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int) -> dict[str, Any]:
        image = self._images.get(index)
        if image is None:
            image = read_square(self.root / "images" / self.records[index]["file"],
                                self.image_size)
            if self.keep_in_memory:
                self._images[index] = image
        return {"image": image.clone(), "caption": self.records[index]["caption"],
                "index": index}
