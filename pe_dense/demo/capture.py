"""A capture thread between a :class:`FrameSource` and the display loop.

With ``drop=True`` (live sources) it keeps only the newest frame, so a slow model shows the
camera as it is now instead of falling behind; with ``drop=False`` (files) every frame is
delivered in order. Errors raised while reading are re-raised in the consumer's thread.
"""

from __future__ import annotations

import collections
import threading
import time
from dataclasses import dataclass

import numpy as np

from pe_dense.demo.sources import FrameSource

__all__ = ["Frame", "FrameGrabber"]


@dataclass
class Frame:
    """One captured frame: ``image`` (H, W, 3) uint8 RGB, its 0-based ``index`` in the
    source and the ``time.perf_counter()`` at capture."""

    index: int
    image: np.ndarray
    captured_at: float


class FrameGrabber:
    """Reads ``source`` in a daemon thread. Use as a context manager, then call ``get()``."""

    def __init__(self, source: FrameSource, drop: bool | None = None, buffer: int = 4) -> None:
        self.source = source
        self.drop = source.live if drop is None else drop
        self._slots: collections.deque[Frame] = collections.deque(
            maxlen=1 if self.drop else max(1, buffer))
        self._cond = threading.Condition()
        self._ended = False
        self._error: BaseException | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="pe-dense-capture", daemon=True)
        self.captured = 0
        self.dropped = 0

    def start(self) -> FrameGrabber:
        self._thread.start()
        return self

    def __enter__(self) -> FrameGrabber:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def _run(self) -> None:
        try:
            index = 0
            while not self._stop.is_set():
                image = self.source.read()
                if image is None:
                    break
                self._put(Frame(index, image, time.perf_counter()))
                index += 1
        except BaseException as exc:  # handed to the consumer in get()
            self._error = exc
        finally:
            with self._cond:
                self._ended = True
                self._cond.notify_all()

    def _put(self, frame: Frame) -> None:
        with self._cond:
            if not self.drop:
                while len(self._slots) == self._slots.maxlen and not self._stop.is_set():
                    self._cond.wait(0.1)
            elif self._slots:
                self.dropped += 1  # deque(maxlen=1) discards the stale frame
            self._slots.append(frame)
            self.captured += 1
            self._cond.notify_all()

    def get(self, timeout: float | None = None) -> Frame | None:
        """The next frame (the newest one with ``drop``); None at the end of the source.

        Raises the source's error (e.g. :class:`StreamDropped`) once its frames are used up,
        and TimeoutError if nothing arrives within ``timeout`` seconds.
        """
        deadline = None if timeout is None else time.perf_counter() + timeout
        with self._cond:
            while not self._slots and not self._ended:
                left = None if deadline is None else deadline - time.perf_counter()
                if left is not None and left <= 0:
                    raise TimeoutError(f"no frame from {self.source.name} in {timeout:.1f} s")
                self._cond.wait(left if left is not None else 0.5)
            if self._slots:
                frame = self._slots.popleft()
                self._cond.notify_all()
                return frame
        if self._error is not None:
            raise self._error
        return None

    def stop(self) -> None:
        """Stop reading and release the source."""
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        if self._thread.is_alive():
            self._thread.join(timeout=2.0)
        self.source.close()
