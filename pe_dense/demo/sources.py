"""Frame sources: camera index, video file, folder of frames, stream URL, built-in clip.

Every source yields (H, W, 3) uint8 RGB frames from ``read()`` and returns None at the end.
Live sources (camera, URL) raise :class:`StreamDropped` when frames stop coming; files end
cleanly. OpenCV is imported inside the functions that need it.
"""

from __future__ import annotations

import glob
import logging
import os
import sys
import time
from pathlib import Path

import numpy as np

from pe_dense.data.images import IMAGE_EXTENSIONS, is_image_path
from pe_dense.demo.errors import SourceNotFound, SourceUnreadable, StreamDropped
from pe_dense.demo.sample_clip import SampleClip

__all__ = [
    "FrameSource", "CameraSource", "VideoFileSource", "FolderSource", "SampleClipSource",
    "open_source", "list_cameras", "IMAGE_SUFFIXES",
]

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = IMAGE_EXTENSIONS  # the project's one list (pe_dense.data.images)
_HINT = ("use --source FILE (a video or a folder of frames), --source URL, or leave --source "
         "out to run on the built-in sample clip")


def _cv2():
    try:
        import cv2
    except ImportError as exc:
        raise ImportError("the demo needs OpenCV: pip install 'pe-dense[demo]' "
                          "(or opencv-python-headless on servers)") from exc
    return cv2


class FrameSource:
    """Base class. ``live`` sources (cameras, streams) may drop frames; files never do."""

    live = False
    name = "source"
    fps: float | None = None
    note = ""  # shown on screen, e.g. why the built-in clip is playing

    def read(self) -> np.ndarray | None:
        """The next (H, W, 3) uint8 RGB frame, or None at the end."""
        raise NotImplementedError

    def close(self) -> None:
        """Release the device or file."""

    def __enter__(self) -> FrameSource:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class _CaptureSource(FrameSource):
    """A ``cv2.VideoCapture`` (camera, file or URL)."""

    def __init__(self, cap, name: str, live: bool, retries: int = 20,
                 retry_wait: float = 0.05) -> None:
        cv2 = _cv2()
        self.cap, self.name, self.live = cap, name, live
        fps = cap.get(cv2.CAP_PROP_FPS)
        self.fps = float(fps) if fps and 0 < fps < 1000 else None
        self.retries, self.retry_wait = retries, retry_wait
        self.frames_read = 0

    def read(self) -> np.ndarray | None:
        cv2 = _cv2()
        for attempt in range(self.retries if self.live else 1):
            ok, frame = self.cap.read()
            if ok and frame is not None:
                self.frames_read += 1
                return cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
            if self.live:
                time.sleep(self.retry_wait * (attempt + 1))
        if self.live:
            raise StreamDropped(f"{self.name} stopped delivering frames after "
                                f"{self.frames_read} frames (unplugged, or the stream ended); "
                                f"check the device or URL and restart the demo")
        return None

    def close(self) -> None:
        self.cap.release()


class CameraSource(_CaptureSource):
    """Camera ``index`` (0 is the default camera)."""

    def __init__(self, index: int) -> None:
        cv2 = _cv2()
        cap = cv2.VideoCapture(index)
        if not cap.isOpened():
            cap.release()
            found = list_cameras()
            listed = ", ".join(str(i) for i in found) if found else "none"
            raise SourceNotFound(f"camera {index} not found (available cameras: {listed}); "
                                 f"{_HINT}")
        super().__init__(cap, f"camera {index}", live=True)


class StreamSource(_CaptureSource):
    """A network stream (rtsp://, http://, ...) opened through OpenCV's FFmpeg backend."""

    def __init__(self, url: str) -> None:
        cap = _cv2().VideoCapture(url)
        if not cap.isOpened():
            cap.release()
            raise SourceNotFound(f"cannot open stream {url}: check the URL and that the "
                                 f"server is reachable; {_HINT}")
        super().__init__(cap, url, live=True)


class VideoFileSource(_CaptureSource):
    """A video file; reading past the last frame ends the source (no error)."""

    def __init__(self, path: str | os.PathLike) -> None:
        cv2 = _cv2()
        path = Path(path)
        cap = cv2.VideoCapture(str(path))
        first = cap.read()[1] if cap.isOpened() else None
        if first is None:
            cap.release()
            raise SourceUnreadable(
                f"cannot decode video {path}: not a video, corrupt, or a codec this OpenCV "
                f"build lacks; convert it (ffmpeg -i {path.name} -c:v libx264 out.mp4) or "
                f"extract frames to a folder and pass --source FOLDER")
        super().__init__(cap, str(path), live=False)
        self.expected = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        self._first: np.ndarray | None = cv2.cvtColor(first, cv2.COLOR_BGR2RGB)

    def read(self) -> np.ndarray | None:
        if self._first is not None:
            frame, self._first = self._first, None
            self.frames_read = 1
            return frame
        frame = super().read()
        if frame is None and self.expected and self.frames_read < self.expected - 1:
            log.warning("%s ended at frame %d of %d (truncated or partly undecodable)",
                        self.name, self.frames_read, self.expected)
        return frame


class FolderSource(FrameSource):
    """Image files in a folder (sorted by name, suffixes :data:`IMAGE_SUFFIXES`), or a single
    image file, read with :func:`~pe_dense.data.images.read_rgb`.

    A frame that cannot be read (corrupt, truncated, a decompression bomb, an absurd shape) is
    skipped with a one-line warning; :class:`SourceUnreadable` (the reader's message) comes only
    when no frame at all could be read. ``skipped`` lists the skipped files' messages."""

    def __init__(self, path: str | os.PathLike) -> None:
        path = Path(path)
        files = ([path] if path.is_file() else
                 sorted(p for p in path.iterdir() if is_image_path(p)))
        if not files:
            raise SourceNotFound(f"no images ({', '.join(IMAGE_SUFFIXES)}) in folder {path}")
        self.files, self.name, self._next = files, str(path), 0
        self.frames_read, self.skipped = 0, []

    def __len__(self) -> int:
        return len(self.files)

    def read(self) -> np.ndarray | None:
        from pe_dense.data.images import BadImageError, read_rgb

        while self._next < len(self.files):
            path = self.files[self._next]
            self._next += 1
            try:
                frame = read_rgb(path)
            except BadImageError as exc:  # includes a file deleted since the listing
                self.skipped.append(str(exc))
                log.warning("skipped frame: %s", exc)
                continue
            self.frames_read += 1
            return frame
        if not self.frames_read and self.skipped:
            more = f" (and {len(self.skipped) - 1} more)" if len(self.skipped) > 1 else ""
            raise SourceUnreadable(f"{self.skipped[0]}{more}")
        return None


class SampleClipSource(FrameSource):
    """The built-in generated clip (see :mod:`pe_dense.demo.sample_clip`)."""

    name = "built-in sample clip"
    fps = 12.0

    def __init__(self, num_frames: int = 32, height: int = 360, width: int = 480) -> None:
        self.clip, self._next = SampleClip(num_frames, height, width), 0

    def __len__(self) -> int:
        return len(self.clip)

    def object_box(self, index: int) -> tuple[int, int, int, int]:
        """The clip's object (a car) in frame ``index``: where track mode starts."""
        return self.clip.object_box(index)

    def read(self) -> np.ndarray | None:
        if self._next >= len(self.clip):
            return None
        self._next += 1
        return self.clip.frame(self._next - 1)


def list_cameras(max_index: int = 8) -> list[int]:
    """Indices of cameras that open. On Linux only /dev/video* devices are probed."""
    if sys.platform.startswith("linux"):
        candidates = sorted(int(p[len("/dev/video"):]) for p in glob.glob("/dev/video*")
                            if p[len("/dev/video"):].isdigit())
    else:
        candidates = list(range(max_index))
    if not candidates:
        return []
    cv2 = _cv2()
    found = []
    for index in candidates:
        cap = cv2.VideoCapture(index)
        if cap.isOpened():
            found.append(index)
        cap.release()
    return found


def open_source(spec: str | None, sample_frames: int = 32) -> FrameSource:
    """Open ``spec``: a camera index ("0"), a URL, a video file, a folder or an image file,
    "sample" for the built-in clip, or None for camera 0 when present, else the sample clip."""
    if spec is None:
        cameras = list_cameras()
        if cameras:
            return CameraSource(cameras[0])
        log.warning("no --source and no camera found: running on the built-in sample clip")
        clip = SampleClipSource(num_frames=sample_frames)
        clip.note = "no camera found: built-in sample clip (use --source FILE|DIR|URL|INDEX)"
        return clip
    if spec == "sample":
        return SampleClipSource(num_frames=sample_frames)
    if spec.isdigit():
        return CameraSource(int(spec))
    if "://" in spec:
        return StreamSource(spec)
    path = Path(spec).expanduser()
    if not path.exists():
        raise SourceNotFound(f"--source {spec}: no such file or folder; {_HINT}")
    if path.is_dir() or is_image_path(path):
        return FolderSource(path)
    return VideoFileSource(path)
