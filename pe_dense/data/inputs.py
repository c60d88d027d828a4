"""A user's inputs for inference: image files, folders, globs, videos and ``.txt`` lists in, one
ordered list of :class:`InputFrame` out, and a torch ``Dataset`` that decodes them (in
``DataLoader`` worker processes, so decoding overlaps the model).

- a folder: every image and video under it, recursively, sorted (extensions:
  :data:`pe_dense.data.images.IMAGE_EXTENSIONS` / ``VIDEO_EXTENSIONS``, any case);
- a glob (``photos/**/*.jpg``): its matches, sorted;
- a ``.txt`` file: one path per line (blank lines and ``#`` comments skipped), relative to the
  list's folder, each expanded as above;
- a video: every frame (every ``every``-th with ``every > 1``);
- anything else is kept as given, so that reading it fails with its path in the summary.

Each input gets a ``key``: its output name, the path relative to the folder or glob root it
came from (without extension; ``<video>/000012`` for frame 12 of a video); keys are unique in a
run (``_2``, ``_3`` appended on a clash).
"""

from __future__ import annotations

import glob
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from torch.utils.data import Dataset

from pe_dense.data.images import (
    ImageLimits,
    check_image_size,
    is_image_path,
    is_video_path,
    read_rgb,
)

__all__ = ["InputFrame", "expand_inputs", "InputDataset", "video_frame_count", "collate_list"]

_GLOB_CHARS = set("*?[")


@dataclass(frozen=True)
class InputFrame:
    """One image to predict: ``path`` (a file; a video for frames), ``frame`` (0-based index
    in the video, None for an image file), ``key`` (unique output name)."""

    path: str
    frame: int | None
    key: str

    @property
    def source(self) -> str:
        """``path``, or ``path#frame`` for a video frame."""
        return self.path if self.frame is None else f"{self.path}#{self.frame}"

    @property
    def video_key(self) -> str | None:
        """The key of the video this frame belongs to (None for image files)."""
        return None if self.frame is None else self.key.rsplit("/", 1)[0]


def _media_under(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file()
                  and (is_image_path(p) or is_video_path(p)))


def _named(paths: Sequence[Path], root: Path | None) -> list[tuple[Path, str]]:
    out = []
    for p in paths:
        rel = p.relative_to(root) if root is not None else Path(p.name)
        out.append((p, rel.with_suffix("").as_posix()))
    return out


def _expand_one(arg: str, base: Path | None, depth: int) -> list[tuple[Path, str]]:
    path = Path(arg) if base is None or Path(arg).is_absolute() else base / arg
    if set(arg) & _GLOB_CHARS and not path.exists():
        matches = sorted(Path(m) for m in glob.glob(str(path), recursive=True))
        root = Path(str(path).split("*")[0].split("?")[0].split("[")[0])
        root = root if root.is_dir() else root.parent
        files = [m for m in matches if m.is_file()]
        return _named(files, root) if files else [(path, path.stem)]
    if path.is_dir():
        return _named(_media_under(path), path.parent if base is None else path.parent)
    if path.suffix.lower() == ".txt" and path.is_file():
        if depth > 4:
            raise ValueError(f"{path}: .txt lists nest more than 4 deep; flatten them")
        out = []
        for line in path.read_text(encoding="utf-8").splitlines():
            line = line.strip()
            if line and not line.startswith("#"):
                out.extend(_expand_one(line, path.parent, depth + 1))
        return out
    return [(path, path.stem)]


def video_frame_count(path: str | os.PathLike) -> int:
    """The number of frames OpenCV reports for a video (``ValueError`` when it cannot open
    it)."""
    import cv2

    cap = cv2.VideoCapture(str(path))
    try:
        if not cap.isOpened():
            raise ValueError(f"cannot open video {path}; check the file (OpenCV/FFmpeg must "
                             "read its codec)")
        return max(int(cap.get(cv2.CAP_PROP_FRAME_COUNT)), 0)
    finally:
        cap.release()


def expand_inputs(args: Sequence[str], every: int = 1) -> list[InputFrame]:
    """The inputs named by ``args`` (files, folders, globs, videos, ``.txt`` lists), in order
    (see the module docstring). ``every``: keep every N-th video frame. A folder or glob that
    matches nothing is a ``ValueError``; a video OpenCV cannot open becomes one input that fails
    when read."""
    if every < 1:
        raise ValueError(f"--every {every}: use 1 (every frame) or more")
    named: list[tuple[Path, str]] = []
    for arg in args:
        found = _expand_one(str(arg), None, 0)
        if not found or (Path(arg).is_dir() and not found):
            raise ValueError(f"{arg}: no images or videos found (extensions: see "
                             "pe_dense.data.images.IMAGE_EXTENSIONS / VIDEO_EXTENSIONS)")
        named.extend(found)
    frames: list[InputFrame] = []
    seen: dict[str, int] = {}
    for path, key in named:
        n = seen.get(key, 0) + 1
        seen[key] = n
        key = key if n == 1 else f"{key}_{n}"
        if is_video_path(path) and path.is_file():
            try:
                count = video_frame_count(path)
            except ValueError:
                count = 0
            if count:
                frames.extend(InputFrame(str(path), i, f"{key}/{i:06d}")
                              for i in range(0, count, every))
                continue
        frames.append(InputFrame(str(path), None, key))
    return frames


class _VideoReader:
    """Sequential frame access with one open capture per video (per worker process)."""

    def __init__(self) -> None:
        self.path: str | None = None
        self.cap: Any = None
        self.next = 0

    def read(self, path: str, frame: int) -> np.ndarray:
        import cv2

        if path != self.path or frame < self.next:
            if self.cap is not None:
                self.cap.release()
            self.cap, self.path, self.next = cv2.VideoCapture(path), path, 0
            if not self.cap.isOpened():
                self.path = None
                raise ValueError(f"cannot open video {path}")
        while self.next < frame:  # skip forward without decoding to RGB
            if not self.cap.grab():
                raise ValueError(f"{path} ends before frame {frame}")
            self.next += 1
        ok, bgr = self.cap.read()
        self.next += 1
        if not ok:
            raise ValueError(f"{path}: frame {frame} cannot be decoded")
        return np.ascontiguousarray(bgr[..., ::-1])


class InputDataset(Dataset):
    """``dataset[i]`` -> ``{"index": i, "image": (H, W, 3) uint8 RGB or None, "error": None or
    a one-line message}`` for ``frames[i]``: a bad input never raises, so one broken file does
    not stop a run. ``limits``: the image reader's size limits."""

    def __init__(self, frames: Sequence[InputFrame], limits: ImageLimits | None = None) -> None:
        self.frames = list(frames)
        self.limits = limits
        self._video = _VideoReader()

    def __len__(self) -> int:
        return len(self.frames)

    def __getitem__(self, index: int) -> dict[str, Any]:
        item = self.frames[index]
        try:
            if item.frame is None:
                image = read_rgb(item.path, self.limits)
            else:
                image = self._video.read(item.path, item.frame)
                check_image_size(image.shape[1::-1], item.source, self.limits)
        except (OSError, ValueError, MemoryError) as exc:
            return {"index": index, "image": None, "error": str(exc).splitlines()[0]}
        return {"index": index, "image": image, "error": None}

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return (self[i] for i in range(len(self)))


def collate_list(batch: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A DataLoader ``collate_fn`` keeping the items as they are (images differ in size)."""
    return batch
