"""Video sequences in DAVIS layout: frame/mask discovery, palette mask I/O, video writing.

Frames are read with :func:`pe_dense.data.images.read_rgb`, masks opened with
:func:`pe_dense.data.images.open_checked` (the same limits and errors).

Supported layouts under a data root (``<res>`` defaults to ``480p``)::

    JPEGImages/<res>/<seq>/00000.jpg   Annotations/<res>/<seq>/00000.png   (DAVIS 2016/2017)
    JPEGImages/<seq>/00000.jpg         Annotations/<seq>/00000.png
    images/<seq>/00000.jpg             masks/<seq>/00000.png

Masks: DAVIS-2017 palette PNGs (mode ``P``; pixel value = object id, 255 = void) or DAVIS-2016
binary masks (mode ``L``/``1`` holding only 0 and 255, read as object id 1). Annotations may
cover every frame (ground truth, evaluable) or only some frames (the first frame plus the frames
where new objects appear). Frame numbers must be consecutive. Predictions are written as palette
PNGs with the DAVIS palette, atomically.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image

from pe_dense.data.images import open_checked
from pe_dense.utils.io import atomic_write

__all__ = [
    "VideoSequence", "find_sequences", "read_mask", "write_mask", "davis_palette",
    "VideoWriter", "read_split",
]

_LAYOUTS = (("JPEGImages/{res}", "Annotations/{res}"), ("JPEGImages", "Annotations"),
            ("images", "masks"))
_FRAME_EXT = (".jpg", ".jpeg", ".png")


@dataclass
class VideoSequence:
    """One video: frame files in order and the annotation files that exist, by frame index."""

    name: str
    frames: list[Path]
    masks: dict[int, Path] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.frames)

    @property
    def fully_annotated(self) -> bool:
        """True when every frame has a mask (ground truth that J&F can be computed against)."""
        return len(self.masks) == len(self.frames)


def davis_palette() -> list[int]:
    """The DAVIS / PASCAL VOC colour map as a flat 768-long [r, g, b, ...] list
    (id 0 black, 1 (128, 0, 0), 2 (0, 128, 0), ...): bits of the id spread over r, g, b."""
    return list(_davis_palette())


@lru_cache(maxsize=1)
def _davis_palette() -> tuple[int, ...]:  # computed once: write_mask runs per mask file
    palette = []
    for i in range(256):
        r = g = b = 0
        c = i
        for j in range(8):
            r |= ((c >> 0) & 1) << (7 - j)
            g |= ((c >> 1) & 1) << (7 - j)
            b |= ((c >> 2) & 1) << (7 - j)
            c >>= 3
        palette += [r, g, b]
    return tuple(palette)


def write_mask(path: str | os.PathLike, labels: np.ndarray) -> Path:
    """Write (H, W) object ids (0..255) as a palette PNG with the DAVIS palette."""
    labels = np.asarray(labels)
    if labels.ndim != 2:
        raise ValueError(f"expected an (H, W) id map, got {labels.shape}")
    if labels.size and (labels.min() < 0 or labels.max() > 255):
        raise ValueError(f"object ids must be in 0..255 for a palette PNG, got "
                         f"{labels.min()}..{labels.max()}")
    image = Image.fromarray(labels.astype(np.uint8))
    image.putpalette(davis_palette())  # an "L" image with a palette becomes mode "P"
    return atomic_write(path, lambda tmp: image.save(tmp, format="PNG"))


def read_mask(path: str | os.PathLike) -> np.ndarray:
    """A DAVIS mask -> (H, W) uint8 object ids (255 = void for palette masks).

    Palette PNGs are read as ids; binary 0/255 greyscale (DAVIS 2016) becomes ids 0/1. Anything
    else (RGB colour masks, greyscale with other values) is refused with a clear error.
    """
    with open_checked(path, what="mask") as im:  # BadImageError (a ValueError) if unreadable
        mode, array = im.mode, np.array(im)
    if mode == "P":
        return array.astype(np.uint8)
    if mode in ("L", "1"):
        values = np.unique(array)
        if set(values.tolist()) <= {0, 1, 255}:
            return (array > 0).astype(np.uint8)
        raise ValueError(f"mask {path} is greyscale with values {values[:8].tolist()}...: "
                         "expected a palette PNG (mode P, pixel = object id) or a binary 0/255 "
                         "mask; convert it with PIL Image.fromarray(ids, mode='P')")
    raise ValueError(f"mask {path} is a mode {mode} image, not a palette PNG: save object ids "
                     "as a mode 'P' PNG (DAVIS 2017) or a binary 0/255 mask (DAVIS 2016)")


def find_sequences(root: str | os.PathLike, names: list[str] | None = None,
                   resolution: str = "480p") -> list[VideoSequence]:
    """Sequences under a DAVIS-layout ``root`` (all, sorted, or the given ``names`` in order).

    Checks: frame numbers consecutive, and a mask for the first frame of every sequence.
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"data root {root} does not exist")
    frames_dir = masks_dir = None
    for frames_pattern, masks_pattern in _LAYOUTS:
        f = root / frames_pattern.format(res=resolution)
        if f.is_dir() and any(p.is_dir() for p in f.iterdir()):
            frames_dir, masks_dir = f, root / masks_pattern.format(res=resolution)
            break
    if frames_dir is None:
        layouts = ", ".join(f"{a.format(res=resolution)}/<seq>" for a, _ in _LAYOUTS)
        raise FileNotFoundError(f"no frame folders under {root}: expected one of {layouts}")
    available = sorted(p.name for p in frames_dir.iterdir() if p.is_dir())
    if names:
        missing = [n for n in names if n not in available]
        if missing:
            raise FileNotFoundError(f"sequences {missing} not found in {frames_dir}; available: "
                                    f"{', '.join(available)}")
    return [_load_sequence(n, frames_dir / n, masks_dir / n) for n in (names or available)]


def read_split(root: str | os.PathLike, split: str) -> list[str]:
    """Sequence names of a DAVIS split, e.g. ``val``: ``ImageSets/2017/val.txt`` (or 2016), or a
    path to such a text file (one name per line)."""
    path = Path(split)
    if not path.is_file():
        candidates = [Path(root) / "ImageSets" / year / f"{split}.txt" for year in ("2017", "2016")]
        found = [c for c in candidates if c.is_file()]
        if not found:
            raise FileNotFoundError(f"split {split!r}: none of {[str(c) for c in candidates]} "
                                    "exists; pass --sequences or a text file of names")
        path = found[0]
    names = [line.strip() for line in path.read_text().splitlines() if line.strip()]
    if not names:
        raise ValueError(f"split file {path} lists no sequences")
    return names


def _numbered(folder: Path, exts: tuple[str, ...]) -> dict[int, Path]:
    files: dict[int, Path] = {}
    for p in sorted(folder.iterdir()) if folder.is_dir() else []:
        if p.suffix.lower() not in exts or p.name.startswith("."):
            continue
        m = re.fullmatch(r"\D*(\d+)", p.stem)
        if not m:
            raise ValueError(f"cannot read a frame number from {p}: name files like 00000.jpg")
        index = int(m.group(1))
        if index in files:
            raise ValueError(f"two files for frame {index} in {folder}: {files[index].name}, "
                             f"{p.name}")
        files[index] = p
    return files


def _load_sequence(name: str, frames_dir: Path, masks_dir: Path) -> VideoSequence:
    frames = _numbered(frames_dir, _FRAME_EXT)
    if not frames:
        raise FileNotFoundError(f"no frames (.jpg/.png) in {frames_dir}")
    numbers = sorted(frames)
    gaps = sorted(set(range(numbers[0], numbers[-1] + 1)) - set(numbers))
    if gaps:
        raise ValueError(f"sequence {name}: frame numbering has gaps (missing {gaps[:5]}"
                         f"{'...' if len(gaps) > 5 else ''}) in {frames_dir}; rename the frames "
                         "consecutively")
    masks = _numbered(masks_dir, (".png",))
    if numbers[0] not in masks:
        raise FileNotFoundError(f"sequence {name}: no mask for the first frame "
                                f"{frames[numbers[0]].name} (expected {masks_dir}/"
                                f"{frames[numbers[0]].stem}.png)")
    extra = sorted(set(masks) - set(numbers))
    if extra:
        raise ValueError(f"sequence {name}: masks {extra[:5]} have no matching frame")
    return VideoSequence(name, [frames[i] for i in numbers],
                         {i - numbers[0]: masks[i] for i in numbers if i in masks})


class VideoWriter:
    """Writes RGB frames to an .mp4 (OpenCV, codec ``mp4v``); the file appears atomically on
    ``close()``. Needs ``opencv-python`` (``pip install pe-dense[demo]``).

    Usage: ``with VideoWriter("out.mp4", fps=10) as vw: vw.write(frame)`` with (H, W, 3) uint8.
    """

    def __init__(self, path: str | os.PathLike, fps: float = 10.0) -> None:
        try:
            import cv2
        except ImportError as exc:
            raise ImportError("writing videos needs OpenCV: pip install opencv-python "
                              "(or pe-dense[demo])") from exc
        self._cv2 = cv2
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._tmp = self.path.with_name(f".{self.path.stem}.tmp-{os.getpid()}{self.path.suffix}")
        self.fps = fps
        self._writer = None
        self.frames = 0

    def write(self, frame: np.ndarray) -> None:
        """Append one (H, W, 3) uint8 RGB frame; all frames must have the first one's size."""
        if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
            raise ValueError(f"video frames must be (H, W, 3) uint8, got {frame.shape} "
                             f"{frame.dtype}")
        h, w = frame.shape[:2]
        if self._writer is None:
            fourcc = self._cv2.VideoWriter_fourcc(*"mp4v")
            self._writer = self._cv2.VideoWriter(str(self._tmp), fourcc, self.fps, (w, h))
            if not self._writer.isOpened():
                raise RuntimeError(f"OpenCV cannot open a video writer for {self.path}")
            self._size = (h, w)
        elif (h, w) != self._size:
            raise ValueError(f"frame {h}x{w} differs from the video's {self._size}")
        self._writer.write(np.ascontiguousarray(frame[..., ::-1]))
        self.frames += 1

    def close(self) -> None:
        """Finish the file and move it into place (nothing is written without frames)."""
        if self._writer is not None:
            self._writer.release()
            self._writer = None
            os.replace(self._tmp, self.path)

    def __enter__(self) -> VideoWriter:
        return self

    def abort(self) -> None:
        """Drop the partial file."""
        if self._writer is not None:
            self._writer.release()
            self._writer = None
        self._tmp.unlink(missing_ok=True)

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()
