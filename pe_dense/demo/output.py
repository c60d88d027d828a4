"""Where annotated frames go: a video file, a folder of PNGs, a window. Files are atomic:
each is written under a temporary name and renamed into place when complete."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np

from pe_dense.demo.errors import NoDisplay
from pe_dense.utils.io import atomic_path

__all__ = ["VideoSink", "FrameSink", "WindowSink", "save_png", "display_available"]

log = logging.getLogger(__name__)

_FOURCC = {".mp4": "mp4v", ".m4v": "mp4v", ".avi": "MJPG", ".mkv": "MJPG", ".mov": "mp4v",
           ".webm": "VP80"}  # WebM/VP8: what browsers play (the web demo's clips)


def save_png(image: np.ndarray, path: str | os.PathLike) -> Path:
    """Write (H, W, 3) uint8 RGB to ``path`` atomically (temp file + rename)."""
    from PIL import Image

    with atomic_path(path) as tmp:
        Image.fromarray(image).save(tmp, format="PNG")
    return Path(path)


class VideoSink:
    """Annotated video at ``path`` (.mp4 / .avi / .mkv / .mov / .webm); frames of the first
    frame's size.

    Written to ``.NAME.partial.EXT`` and renamed on ``close()``, so an interrupted run never
    leaves a truncated file under the final name.
    """

    def __init__(self, path: str | os.PathLike, fps: float) -> None:
        self.path = Path(path)
        if self.path.suffix.lower() not in _FOURCC:
            raise ValueError(f"--output {path}: use one of {', '.join(_FOURCC)}")
        self.tmp = self.path.with_name(f".{self.path.stem}.partial{self.path.suffix}")
        self.fps = fps if fps and fps > 0 else 15.0
        self.writer = None
        self.size: tuple[int, int] | None = None
        self.count = 0

    def write(self, rgb: np.ndarray) -> None:
        import cv2

        h, w = rgb.shape[:2]
        if self.writer is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fourcc = cv2.VideoWriter_fourcc(*_FOURCC[self.path.suffix.lower()])
            self.writer = cv2.VideoWriter(str(self.tmp), fourcc, self.fps, (w, h))
            if not self.writer.isOpened():
                raise RuntimeError(f"OpenCV cannot write {self.path.suffix} video to "
                                   f"{self.path}; try --output out.avi or --save-frames DIR")
            self.size = (h, w)
        elif (h, w) != self.size:
            raise ValueError(f"frame size changed from {self.size} to {(h, w)} mid-video")
        self.writer.write(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
        self.count += 1

    def close(self) -> None:
        if self.writer is None:
            return
        self.writer.release()
        self.writer = None
        os.replace(self.tmp, self.path)
        log.info("wrote %d frames to %s", self.count, self.path)


class FrameSink:
    """One PNG per frame in ``folder``: ``frame_00000.png``, ..."""

    def __init__(self, folder: str | os.PathLike) -> None:
        self.folder = Path(folder)
        self.count = 0

    def write(self, rgb: np.ndarray) -> None:
        save_png(rgb, self.folder / f"frame_{self.count:05d}.png")
        self.count += 1

    def close(self) -> None:
        if self.count:
            log.info("wrote %d frames to %s", self.count, self.folder)


def display_available() -> bool:
    """False on Linux/BSD without an X11 or Wayland display (macOS and Windows always have one)."""
    import sys

    if sys.platform.startswith(("linux", "freebsd")):
        return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    return True


class WindowSink:
    """An OpenCV window with key polling and a mouse-drag box (for track mode)."""

    def __init__(self, title: str = "pe-dense demo") -> None:
        import cv2

        if not display_available():
            raise NoDisplay("no display available (DISPLAY/WAYLAND_DISPLAY unset): run with "
                            "--headless --output out.mp4 (or --save-frames DIR)")
        self.title = title
        try:
            cv2.namedWindow(title, cv2.WINDOW_NORMAL)
        except cv2.error as exc:
            raise NoDisplay(f"OpenCV cannot open a window ({exc.msg.strip() or exc}); this is "
                            "likely opencv-python-headless: pip install opencv-python, or run "
                            "with --headless --output out.mp4") from exc
        cv2.setMouseCallback(title, self._on_mouse)
        self._drag_start: tuple[int, int] | None = None
        self.drag_box: tuple[int, int, int, int] | None = None  # in progress, for drawing
        self.picked_box: tuple[int, int, int, int] | None = None  # finished, consumed by app

    def _on_mouse(self, event: int, x: int, y: int, flags: int, param) -> None:
        import cv2

        if event == cv2.EVENT_LBUTTONDOWN:
            self._drag_start, self.drag_box = (x, y), None
        elif event == cv2.EVENT_MOUSEMOVE and self._drag_start is not None:
            self.drag_box = (*self._drag_start, x, y)
        elif event == cv2.EVENT_LBUTTONUP and self._drag_start is not None:
            x0, y0 = self._drag_start
            box = (min(x0, x), min(y0, y), max(x0, x), max(y0, y))
            self._drag_start, self.drag_box = None, None
            if box[2] - box[0] >= 4 and box[3] - box[1] >= 4:
                self.picked_box = box

    def write(self, rgb: np.ndarray) -> None:
        import cv2

        bgr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
        if self.drag_box is not None:
            x0, y0, x1, y1 = self.drag_box
            cv2.rectangle(bgr, (x0, y0), (x1, y1), (0, 255, 255), 2)
        cv2.imshow(self.title, bgr)

    def poll_key(self, wait_ms: int = 1) -> int:
        """The pressed key code, -1 for none; a closed window reads as Esc (quit)."""
        import cv2

        key = cv2.waitKey(wait_ms)
        try:
            if cv2.getWindowProperty(self.title, cv2.WND_PROP_VISIBLE) < 1:
                return 27
        except cv2.error:
            return 27
        return key

    def close(self) -> None:
        import cv2

        cv2.destroyWindow(self.title)
        cv2.waitKey(1)
