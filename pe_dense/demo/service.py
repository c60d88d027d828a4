"""The demo as a service for a web page: the demo's own modes (built by
:func:`pe_dense.demo.build.mode_factory`) run on uploaded images, uploaded clips and webcam
frames, one request at a time, with the random-weights banner on every output made with random
weights and a status line (mode, model, input size, stage latency, notes) beside it.

Uploads are checked before they are decoded: a file over the size limit, or one that is neither
an image (read by :func:`pe_dense.data.images.read_rgb`, with its pixel limits) nor a video the
demo's video reader can decode, is an :class:`UploadError` whose message the page shows. No web
framework is imported here (see :mod:`pe_dense.demo.web` for the page).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from pe_dense.demo.build import ModelOptions, TaskModel, mode_factory
from pe_dense.demo.errors import DemoError
from pe_dense.demo.modes import FeaturesMode, Mode, upsample_rgb
from pe_dense.demo.runtime import Runtime, StageTimer
from pe_dense.viz.banner import mark_random

__all__ = ["UploadError", "ModeUnavailable", "Output", "DemoService", "fit_display"]

log = logging.getLogger(__name__)


class UploadError(ValueError):
    """An upload the demo cannot use; the message says why and what to upload instead."""


class ModeUnavailable(ValueError):
    """A mode that cannot be built here (e.g. a task mode under an exported backbone)."""


@dataclass
class Output:
    """One annotated frame: ``image`` (H, W, 3) uint8 RGB (banner included when ``random``),
    ``status`` a one-line summary, ``notes`` the mode's and runtime's remarks."""

    image: np.ndarray
    mode: str
    random: bool
    status: str
    notes: list[str] = field(default_factory=list)

    def markdown(self) -> str:
        """The status as Markdown: the summary line, then one line per note."""
        lines = [self.status] + [f"- {n}" for n in self.notes]
        if self.random:
            lines.append("- **random weights**: this output is not from a trained model")
        return "\n".join(lines)


def fit_display(image: np.ndarray, max_side: int) -> np.ndarray:
    """``image`` scaled down (aspect kept) so its long side is at most ``max_side`` pixels;
    the modes resize to the network input anyway, so drawing at full size only costs time."""
    h, w = image.shape[:2]
    if max(h, w) <= max_side:
        return image
    scale = max_side / max(h, w)
    return upsample_rgb(image, (max(1, round(h * scale)), max(1, round(w * scale))))


class DemoService:
    """The demo's modes behind a lock, for a page served to browsers.

    ``modes``: the names offered (the mode tour, plus ``text`` when there are prompts);
    ``max_upload_mb``: the upload size limit; ``max_side``: frames are drawn at most this
    large; ``max_video_frames``: frames of an uploaded clip that are processed.
    """

    def __init__(self, runtime: Runtime, opts: ModelOptions, task: TaskModel | None,
                 modes: tuple[str, ...], max_upload_mb: float = 50.0, max_side: int = 1280,
                 max_video_frames: int = 150) -> None:
        self.runtime, self.opts, self.task = runtime, opts, task
        self.modes = modes
        self.max_upload_mb, self.max_side = max_upload_mb, max_side
        self.max_video_frames = max_video_frames
        self._build: Callable[[str], Mode] = mode_factory(runtime, opts, task)
        self._built: dict[str, Mode] = {}
        self._lock = threading.Lock()
        self.timer = StageTimer(runtime.device)
        self.track_box: tuple[int, int, int, int] | None = None  # picked on the page
        self._fed: dict[str, tuple[str, tuple[int, ...]]] = {}  # mode -> (source, frame shape)

    # ------------------------------------------------------------------ modes

    @property
    def depth(self) -> int | None:
        """Number of blocks of the backbone (the features layer slider), None if unknown."""
        depth = getattr(self.runtime.backbone, "num_layers", None)
        return int(depth) if isinstance(depth, int) and depth > 0 else None

    def get_mode(self, name: str) -> Mode:
        """The mode called ``name`` (built on first use); :class:`ModeUnavailable` says why
        it cannot be built."""
        if name not in self.modes:
            raise ModeUnavailable(f"mode {name!r} is not offered here; choose one of "
                                  f"{', '.join(self.modes)}")
        if name not in self._built:
            try:
                self._built[name] = self._build(name)
            except (DemoError, ImportError, ValueError) as exc:
                raise ModeUnavailable(f"{name} mode is unavailable: {exc}") from exc
        return self._built[name]

    def set_layer(self, layer: int | None) -> None:
        """Show the features of block ``layer`` (0-based) in features mode (refits its PCA)."""
        if layer is None or int(layer) == self.opts.layer:
            return
        mode = self._built.get("features")
        if isinstance(mode, FeaturesMode) and mode.layer != int(layer):
            mode.layer = int(layer)
            mode.reset()
        self.opts = replace(self.opts, layer=int(layer))
        if mode is None:  # built later, at this layer
            self._build = mode_factory(self.runtime, self.opts, self.task)

    def set_prompts(self, text: str | None) -> None:
        """Text mode on new comma-separated prompts (rebuilt by the demo's mode factory)."""
        prompts = tuple(p.strip() for p in (text or "").split(",") if p.strip())
        if "text" not in self.modes or not prompts or prompts == self.opts.prompts:
            return
        try:
            mode = mode_factory(self.runtime, replace(self.opts, prompts=prompts),
                                self.task)("text")
        except (DemoError, ImportError, ValueError) as exc:
            raise ModeUnavailable(f"text mode with prompts {', '.join(prompts)}: {exc}") from exc
        self.opts = replace(self.opts, prompts=prompts)
        self._built["text"] = mode

    # ------------------------------------------------------------------ frames

    def pick(self, x: float, y: float, size: tuple[int, int]) -> tuple[int, int, int, int]:
        """Track the object at pixel (``x``, ``y``) of an (H, W) frame in the next upload runs:
        a box a quarter of the short side wide around it (the page's stand-in for the window
        demo's mouse drag). Returns the box (xyxy pixels)."""
        h, w = size
        r = max(4, min(h, w) // 8)
        self.track_box = (max(0, int(x) - r), max(0, int(y) - r), min(w, int(x) + r),
                          min(h, int(y) + r))
        return self.track_box

    def _restart(self, mode: Mode, picked: bool = True) -> None:
        """Forget a mode's state before a new image or clip; track mode follows the object
        picked on the page (``picked``: uploads, not the webcam)."""
        mode.reset()
        if picked and self.track_box is not None and hasattr(mode, "set_box"):
            mode.set_box(self.track_box)

    def _annotate(self, mode: Mode, image: np.ndarray, fresh: bool = False) -> Output:
        """Run ``mode`` on one frame; the banner marks random weights (the backbone's or the
        mode's head), as in :meth:`pe_dense.demo.app.DemoApp.annotate`."""
        self.timer.ms.clear()
        out = mode.process(image, self.timer)
        random = self.runtime.random_weights or getattr(mode, "trained", True) is False
        mark_random(out, random, inplace=True)
        rt = self.runtime
        size = f"{rt.input_size[1]}x{rt.input_size[0]}" if rt.input_size else "-"
        stages = "  ".join(f"{k} {v:.0f} ms" for k, v in self.timer.ms.items())
        status = (f"**{mode.name}** · {rt.model_name} · input {size} · {rt.device.type} "
                  f"{rt.precision} · {stages}")
        notes = [n for n in (rt.weights_note,) if n] + [
            n.replace("drag a box", "click the output") for n in mode.notes
            if not (fresh and n.startswith("fitting PCA"))]  # one still image: fitted on it
        return Output(out, mode.name, random, status, notes)

    def _continues(self, mode: Mode, source: str, shape: tuple[int, ...]) -> bool:
        """Whether ``mode`` last ran on frames of this source and size (else its state, e.g.
        a tracked object, belongs to other frames and must start over)."""
        same = self._fed.get(mode.name) == (source, shape)
        self._fed[mode.name] = (source, shape)
        return same

    def run_image(self, image: np.ndarray, mode: str, layer: int | None = None,
                  fresh: bool = True, source: str = "webcam") -> Output:
        """One (H, W, 3) uint8 RGB frame through ``mode``. ``fresh``: a still image, so
        state kept across frames (PCA fit, depth colour range, tracked object) starts over;
        webcam frames pass False to keep it while they come from the same ``source`` at the
        same size."""
        if image.ndim == 2:
            image = np.repeat(image[..., None], 3, axis=2)
        # a writable copy: the web framework hands read-only arrays, and modes draw in place
        image = fit_display(np.array(image[..., :3], dtype=np.uint8), self.max_side)
        with self._lock:
            self.set_layer(layer)
            current = self.get_mode(mode)
            if not self._continues(current, "" if fresh else source, image.shape) or fresh:
                self._restart(current, picked=fresh)
            return self._annotate(current, image, fresh)

    def run_clip(self, path: str | os.PathLike, mode: str, out_dir: str | os.PathLike,
                 layer: int | None = None) -> Iterator[tuple[Output, int, Path | None]]:
        """An uploaded clip through ``mode`` frame by frame (state carried over, so track mode
        follows its object): yields ``(output, frame index, None)`` per frame and finally
        ``(last output, frames, video path)`` with the annotated clip as WebM (VP8, which
        browsers play), at most ``max_video_frames`` frames."""
        from pe_dense.demo.output import VideoSink
        from pe_dense.demo.sources import VideoFileSource

        source = VideoFileSource(path)
        out_path = Path(out_dir) / f"{Path(path).stem}_{mode}_{time.time_ns()}.webm"
        sink = VideoSink(out_path, source.fps or 10.0)
        last, count = None, 0
        try:
            with self._lock:
                self.set_layer(layer)
                current = self.get_mode(mode)
                self._restart(current)
                self._fed[current.name] = (str(path), ())
            while count < self.max_video_frames:
                frame = source.read()
                if frame is None:
                    break
                with self._lock:
                    last = self._annotate(current, fit_display(frame, self.max_side))
                sink.write(last.image)
                count += 1
                yield last, count, None
        finally:
            source.close()
            sink.close()
        if last is None:
            raise UploadError(f"{Path(path).name} holds no frame the demo can decode")
        if count >= self.max_video_frames:
            last.notes.append(f"the first {count} frames (pe-dense demo --web "
                              "--max-video-frames N processes more)")
        yield last, count, out_path

    # ------------------------------------------------------------------ uploads

    def check_upload(self, path: str | os.PathLike) -> tuple[str, np.ndarray | None]:
        """``("image", rgb)`` or ``("video", None)`` for an uploaded file, or
        :class:`UploadError`: over the size limit, not an image or video, or unreadable."""
        from pe_dense.data.images import BadImageError, is_image_path, is_video_path, read_rgb

        path = Path(path)
        name = path.name
        size = path.stat().st_size
        if size > self.max_upload_mb * 1e6:
            raise UploadError(f"{name} is {size / 1e6:.1f} MB, over the {self.max_upload_mb:g} "
                              "MB upload limit (start the demo with --max-upload-mb N for more)")
        if is_video_path(path):
            from pe_dense.demo.sources import VideoFileSource

            try:
                VideoFileSource(path).close()
            except DemoError as exc:
                raise UploadError(str(exc).replace(str(path), name).split("; convert")[0]
                                  + ": upload an MP4, WebM or AVI clip") from exc
            return "video", None
        try:
            return "image", read_rgb(path)
        except BadImageError as exc:
            reason = str(exc).replace(str(path), name).removeprefix(f"image {name}: ")
            what = "" if is_image_path(path) else " is not an image or a video:"
            raise UploadError(f"{name}{what or ':'} {reason.split('; replace')[0]}; upload a "
                              "JPEG, PNG or WebP image or an MP4, WebM or AVI clip") from exc
