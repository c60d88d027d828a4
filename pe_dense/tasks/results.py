"""Result files of ``pe-dense predict``, in the formats of the field, one writer per task.

A writer gets one input at a time (:class:`PredictItem`: its output ``key``, source, COCO-style
``image_id`` and size) with the model's prediction for it, writes that input's files atomically
under ``out/pred/`` and returns a JSON-able record; :meth:`ResultWriter.finish` gets every
record of the run (all processes, in input order) and writes the merged files (e.g. the COCO
``results.json``). Records are what a resumed run keeps of finished inputs, so a writer needs
nothing but them to finish.

The task writers: detection (:mod:`pe_dense.tasks.detection.results`: COCO results JSON with RLE
masks), segmentation (PNG label maps with a palette, optional logits ``.npz``), depth (16-bit
PNG in millimetres, optional float ``.npy``). Shared file helpers live here.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pe_dense.utils.io import atomic_path

__all__ = ["PredictItem", "ResultWriter", "write_png", "read_png", "save_npz", "save_npy"]


@dataclass(frozen=True)
class PredictItem:
    """One input of a predict run. ``index``: position in the expanded input list; ``key``:
    its output name (relative posix path without extension, unique in the run); ``source``:
    the file (``video.mp4#12`` for frame 12 of a video); ``image_id``: its COCO image id;
    ``size``: (height, width) of the decoded image."""

    index: int
    key: str
    source: str
    image_id: int
    size: tuple[int, int]


class ResultWriter:
    """Base writer: ``out`` is the run's output folder, ``class_names`` the model's classes.

    Subclasses set :attr:`suffixes` (the files each input gets, under ``out/pred/<key>``) and
    implement :meth:`write`; :meth:`finish` writes nothing by default."""

    suffixes: tuple[str, ...] = ()

    def __init__(self, out: str | os.PathLike, class_names: Sequence[str] | None = None,
                 **options: Any) -> None:
        self.out = Path(out)
        self.class_names = list(class_names) if class_names else None
        self.options = options

    def path(self, item: PredictItem, suffix: str) -> Path:
        """``out/pred/<key><suffix>``."""
        return self.out / "pred" / f"{item.key}{suffix}"

    def files(self, item: PredictItem) -> list[Path]:
        """The per-input files :meth:`write` makes (a resumed run checks they exist)."""
        return [self.path(item, s) for s in self.suffixes]

    def write(self, item: PredictItem, prediction: Any) -> dict[str, Any]:
        """Write ``item``'s files; return its JSON-able record."""
        raise NotImplementedError

    def finish(self, records: Sequence[dict[str, Any]]) -> list[Path]:
        """Merged files from every record of the run (input order); returns their paths."""
        return []


def write_png(path: str | os.PathLike, array: np.ndarray,
              palette: np.ndarray | None = None) -> Path:
    """Write a (H, W) uint8 / uint16 array as a PNG atomically (uint8 with ``palette``, a
    (K, 3) uint8 colour table, as a palette PNG whose pixel values stay the class indices)."""
    from PIL import Image

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if array.dtype == np.uint16:
        image = Image.fromarray(array)  # mode I;16, written as a 16-bit grey PNG
    elif array.dtype == np.uint8:
        image = Image.fromarray(array, mode="L")
        if palette is not None:
            image = image.convert("P") if image.mode != "P" else image
            image.putpalette(np.asarray(palette, dtype=np.uint8)[:256].reshape(-1).tolist())
    else:
        raise ValueError(f"write_png takes uint8 or uint16 arrays, got {array.dtype}")
    with atomic_path(path) as tmp:
        image.save(tmp, format="PNG")
    return path


def read_png(path: str | os.PathLike) -> np.ndarray:
    """A PNG written by :func:`write_png` -> its (H, W) array (palette indices / uint16)."""
    from PIL import Image

    with Image.open(path) as image:
        return np.array(image)


def save_npz(path: str | os.PathLike, **arrays: np.ndarray) -> Path:
    """``np.savez_compressed`` atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.savez_compressed(f, **arrays)
    return path


def save_npy(path: str | os.PathLike, array: np.ndarray) -> Path:
    """``np.save`` atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.save(f, array)
    return path
