"""The demo loop: capture thread -> mode -> HUD -> window / video / frame files, with keys."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from pe_dense.demo.capture import FrameGrabber
from pe_dense.demo.draw import draw_hud, draw_panel
from pe_dense.demo.errors import DemoError, StreamDropped
from pe_dense.demo.keys import HELP_LINE, Action, handle_key, next_mode, tour_modes
from pe_dense.demo.modes import Mode
from pe_dense.demo.output import FrameSink, VideoSink, WindowSink, save_png
from pe_dense.demo.runtime import Runtime, StageTimer
from pe_dense.demo.sources import FrameSource
from pe_dense.viz.banner import banner_height, mark_random

__all__ = ["DemoOptions", "DemoApp", "summary_lines"]

log = logging.getLogger(__name__)


@dataclass
class DemoOptions:
    """How the loop runs. ``cycle_every`` > 0 switches to the next mode every that many frames
    (for headless tours of all modes); ``max_frames`` > 0 stops after that many frames."""

    mode: str = "features"
    headless: bool = False
    output: str | None = None
    save_frames: str | None = None
    snapshot_dir: str = "outputs/snapshots"
    max_frames: int = 0
    cycle_every: int = 0
    modes: tuple[str, ...] = field(default_factory=tour_modes)
    show_hud: bool = True
    output_fps: float | None = None  # default: the file's rate, 10 for live sources
    stall_timeout: float = 10.0  # seconds without a frame from a live source -> StreamDropped


class DemoApp:
    """Runs ``source`` through the modes built by ``build_mode(name)``.

    ``run()`` returns the number of frames shown. A window is opened unless ``headless``;
    headless runs need ``output`` or ``save_frames``.
    """

    def __init__(self, source: FrameSource, runtime: Runtime,
                 build_mode: Callable[[str], Mode], options: DemoOptions) -> None:
        if options.mode not in options.modes:
            raise ValueError(f"--mode {options.mode}: choose one of {', '.join(options.modes)}")
        if options.headless and not (options.output or options.save_frames):
            raise ValueError("--headless needs --output FILE.mp4 and/or --save-frames DIR")
        self.source, self.runtime, self.options = source, runtime, options
        self._build_mode = build_mode
        self._modes: dict[str, Mode] = {}
        self.mode = self._get_mode(options.mode)
        self.timer = StageTimer(runtime.device)
        self.paused = False
        self.show_hud = options.show_hud
        self.fps = 0.0
        self.frames = 0
        self.last_output: np.ndarray | None = None
        self.last_index = -1
        self._frame_index = 0  # index of the frame being processed
        self.output_times: list[float] = []  # perf_counter() of the first and last output
        self.sinks: list = []
        self._message: tuple[str, float] | None = None  # (text, shown until perf_counter)
        self.window: WindowSink | None = None

    def _get_mode(self, name: str) -> Mode:
        if name not in self._modes:
            mode = self._build_mode(name)
            if hasattr(mode, "hint") and hasattr(self.source, "object_box"):
                mode.hint = lambda: self.source.object_box(self._frame_index)
            self._modes[name] = mode
        return self._modes[name]

    def switch_mode(self, name: str) -> None:
        """Make ``name`` the current mode; a mode that cannot be built keeps the current one
        (interactive) or raises (headless)."""
        if name == self.mode.name:
            return
        try:
            self.mode = self._get_mode(name)
        except (DemoError, ImportError, ValueError) as exc:
            if self.options.headless:
                raise
            log.warning("cannot switch to %s: %s", name, exc)
            self.flash(f"{name} unavailable: {exc}")
            return
        self.timer.ms.clear()
        log.info("mode: %s", name)

    def apply(self, action: Action | None) -> bool:
        """Apply a key action; returns False when the demo should quit."""
        if action is None:
            return True
        if action.kind == "quit":
            return False
        if action.kind == "pause":
            self.paused = not self.paused
        elif action.kind == "snapshot":
            self.snapshot()
        elif action.kind == "next_mode":
            self.switch_mode(next_mode(self.mode.name, self.options.modes))
        elif action.kind == "mode" and action.mode in self.options.modes:
            self.switch_mode(action.mode)
        elif action.kind == "reset":
            self.mode.reset()
        elif action.kind == "toggle_hud":
            self.show_hud = not self.show_hud
        return True

    def snapshot(self) -> Path | None:
        """Save the frame on screen (with HUD) as a PNG; returns its path."""
        if self.last_output is None:
            return None
        path = Path(self.options.snapshot_dir) / f"{self.mode.name}_{self.last_index:05d}.png"
        save_png(self.last_output, path)
        log.info("snapshot: %s", path)
        self.flash(f"saved {path}")
        return path

    def flash(self, text: str, seconds: float = 3.0) -> None:
        """Show ``text`` under the HUD for a few seconds."""
        self._message = (text, time.perf_counter() + seconds)

    @property
    def random_weights(self) -> bool:
        """Whether the picture on screen comes from random weights: the backbone's, or the
        current mode's head (a task mode without --config/--checkpoint)."""
        return self.runtime.random_weights or getattr(self.mode, "trained", True) is False

    def annotate(self, image: np.ndarray) -> np.ndarray:
        """Run the current mode on one frame, mark random weights with the banner at the
        bottom (always, HUD or not) and draw the HUD above it: (H, W, 3) uint8 -> same."""
        out = self.mode.process(image, self.timer)
        mark_random(out, self.random_weights, inplace=True)
        if self.show_hud:
            rt = self.runtime
            notes = [n for n in (self.source.note, rt.weights_note) if n] + list(self.mode.notes)
            if self._message and time.perf_counter() < self._message[1]:
                notes.append(self._message[0])
            hud = out[:out.shape[0] - banner_height(*out.shape[:2])] if self.random_weights \
                else out  # a view: the HUD's bottom help line stays above the banner
            draw_hud(hud, mode=self.mode.name, model=rt.model_name, input_size=rt.input_size,
                     device=f"{rt.device.type} {rt.precision}", fps=self.fps,
                     stages=self.timer.ms, notes=notes, paused=self.paused,
                     help_line=None if self.options.headless else HELP_LINE)
        return out

    def _open_sinks(self) -> None:
        opts = self.options
        if opts.output:
            fps = opts.output_fps or (10.0 if self.source.live else self.source.fps or 15.0)
            self.sinks.append(VideoSink(opts.output, fps))
        if opts.save_frames:
            self.sinks.append(FrameSink(opts.save_frames))
        if not opts.headless:
            self.window = WindowSink()
            self.sinks.append(self.window)

    def run(self) -> int:
        """Process frames until the source ends, ``max_frames``, or the quit key."""
        self._open_sinks()
        grabber = FrameGrabber(self.source)
        try:
            with grabber:
                self._loop(grabber)
        finally:
            for sink in self.sinks:
                sink.close()
        if grabber.dropped:
            log.info("dropped %d stale frames to keep up with %s", grabber.dropped,
                     self.source.name)
        return self.frames

    def _loop(self, grabber: FrameGrabber) -> None:
        opts = self.options
        last_shown = None
        while not opts.max_frames or self.frames < opts.max_frames:
            if self.paused and self.window is not None and self.last_output is not None:
                still = self.last_output.copy()
                message = (self._message[0] if self._message
                           and time.perf_counter() < self._message[1] else "")
                draw_panel(still, [(f"PAUSED (space resumes)  {message}", (255, 220, 60))],
                           bottom=True)
                self.window.write(still)
                if not self.apply(handle_key(self.window.poll_key(30))):
                    return
                continue
            try:
                frame = grabber.get(timeout=opts.stall_timeout if self.source.live else None)
            except TimeoutError as exc:
                raise StreamDropped(f"{exc}: the camera or stream stalled; check it and "
                                    f"restart the demo") from exc
            if frame is None:
                log.info("end of %s after %d frames", self.source.name, self.frames)
                self._hold_last_frame()
                return
            if opts.cycle_every and self.frames and self.frames % opts.cycle_every == 0:
                self.switch_mode(next_mode(self.mode.name, opts.modes))
            self._pick_box()
            self._frame_index = frame.index
            out = self.annotate(frame.image)
            self.last_output, self.last_index = out, frame.index
            for sink in self.sinks:
                sink.write(out)
            self.frames += 1
            now = time.perf_counter()
            if self.output_times:
                self.output_times[1] = now
            else:
                self.output_times = [now, now]
            if last_shown is not None:
                dt = now - last_shown
                self.fps = 1 / dt if self.fps == 0 else 0.8 * self.fps + 0.2 / dt
            last_shown = now
            if self.window is not None and not self.apply(handle_key(self.window.poll_key())):
                return

    def _hold_last_frame(self) -> None:
        """In a window, keep the last frame up at the end of a video until q/Esc (snapshot and
        HUD keys still work)."""
        if self.window is None or self.last_output is None:
            return
        while True:
            still = self.last_output.copy()
            draw_panel(still, [("END OF VIDEO: q or Esc quits, c saves a snapshot",
                                (255, 220, 60))], bottom=True)
            self.window.write(still)
            action = handle_key(self.window.poll_key(50))
            if action is not None and action.kind in ("quit", "snapshot"):
                if not self.apply(action):
                    return

    @property
    def steady_fps(self) -> float | None:
        """Frames per second after the first frame (which includes warm-up), None under 2."""
        if self.frames < 2 or len(self.output_times) < 2:
            return None
        return (self.frames - 1) / max(self.output_times[1] - self.output_times[0], 1e-9)

    def _pick_box(self) -> None:
        """Hand a box dragged in the window to track mode (switching to it)."""
        if self.window is None or self.window.picked_box is None:
            return
        box, self.window.picked_box = self.window.picked_box, None
        self.switch_mode("track")
        if hasattr(self.mode, "set_box"):
            self.mode.set_box(box)


def summary_lines(app: DemoApp, frames: int, seconds: float, cpu: float,
                  outputs: list[str]) -> list[str]:
    """The console report after a run: frames, fps, device, input size, CPU time per frame,
    steady fps and smoothed stage latency. ``seconds``: wall time up to the last frame shown;
    ``cpu``: process CPU time; ``outputs``: the files/folders written."""
    runtime, size = app.runtime, app.runtime.input_size
    lines = [f"{frames} frames from {app.source.name} in {seconds:.1f} s "
             f"({frames / max(seconds, 1e-9):.2f} fps, {runtime.device.type} "
             f"{runtime.precision}, input {size[1] if size else '-'}x{size[0] if size else '-'})"
             + "".join(f" -> {p}" for p in outputs if p)]
    if frames:
        lines.append(f"CPU time {cpu / frames:.2f} s per frame (all threads; on an otherwise idle "
                     f"machine wall time is about this divided by the cores torch uses)")
    if app.steady_fps:
        lines.append(f"after the first frame: {app.steady_fps:.2f} fps; last mode "
                     f"{app.mode.name}, smoothed stage latency: {app.timer.summary()}")
    return lines
