"""Demo drawing with OpenCV: heads-up display, help line, boxes with labels, legend, inset.

All functions draw in place on (H, W, 3) uint8 RGB arrays and scale text with the frame width.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["text_scale", "draw_panel", "draw_hud", "draw_boxes", "draw_legend", "draw_inset"]


def _cv2():
    import cv2

    return cv2


def text_scale(width: int) -> float:
    """OpenCV font scale for a frame ``width`` pixels wide (0.5 at 640)."""
    return float(np.clip(width / 1280, 0.3, 1.0))


def draw_panel(img: np.ndarray, lines: Sequence[tuple[str, tuple[int, int, int]]],
               origin: tuple[int, int] = (0, 0), bottom: bool = False) -> None:
    """Text lines (text, RGB colour) on a dark translucent band at the top (or bottom)."""
    if not lines:
        return
    cv2 = _cv2()
    h, w = img.shape[:2]
    scale = text_scale(w)
    line_h = int(28 * scale) + 4
    band_h = min(h, line_h * len(lines) + 6)
    y0 = h - band_h if bottom else origin[1]
    band = img[y0:y0 + band_h]
    band[:] = (band.astype(np.float32) * 0.45).astype(np.uint8)
    for i, (text, color) in enumerate(lines):
        y = y0 + line_h * (i + 1) - 2
        cv2.putText(img, text, (origin[0] + 6, y), cv2.FONT_HERSHEY_SIMPLEX, scale, color,
                    max(1, int(round(2 * scale))), cv2.LINE_AA)


def draw_hud(img: np.ndarray, *, mode: str, model: str, input_size: tuple[int, int] | None,
             device: str, fps: float, stages: dict[str, float], notes: Sequence[str] = (),
             help_line: str | None = None, paused: bool = False) -> None:
    """Mode, model, network input size, device/precision, fps and per-stage latency (ms) at the
    top; warnings (yellow) under them; the help line at the bottom."""
    size = f"{input_size[1]}x{input_size[0]}" if input_size else "-"
    rate = f"{fps:.1f} fps" if fps > 0 else "-- fps"
    lines = [(f"{mode.upper()}{'  [PAUSED]' if paused else ''}  {model}  in {size}  {device}",
              (255, 255, 255)),
             ("  ".join([rate] + [f"{k} {v:.0f}ms" for k, v in stages.items()]),
              (160, 255, 160))]
    lines += [(note, (255, 220, 60)) for note in notes]
    draw_panel(img, lines)
    if help_line:
        draw_panel(img, [(help_line, (220, 220, 220))], bottom=True)


def draw_boxes(img: np.ndarray, boxes: np.ndarray, labels: Sequence[str],
               colors: np.ndarray) -> None:
    """(N, 4) xyxy pixel boxes with a label tag each, in (N, 3) uint8 RGB colours."""
    cv2 = _cv2()
    scale = text_scale(img.shape[1])
    thick = max(1, int(round(3 * scale)))
    for box, label, color in zip(boxes, labels, colors, strict=True):
        x0, y0, x1, y1 = (int(round(v)) for v in box)
        color = tuple(int(c) for c in color)
        cv2.rectangle(img, (x0, y0), (x1, y1), color, thick)
        (tw, th), base = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
        ty = max(y0, th + base + 2)
        cv2.rectangle(img, (x0, ty - th - base - 2), (x0 + tw + 4, ty), color, -1)
        cv2.putText(img, label, (x0 + 2, ty - base), cv2.FONT_HERSHEY_SIMPLEX, scale,
                    (0, 0, 0), 1, cv2.LINE_AA)


def draw_legend(img: np.ndarray, names: Sequence[str], colors: np.ndarray,
                max_items: int = 12) -> None:
    """A colour legend in the bottom-right corner (above the help line)."""
    cv2 = _cv2()
    h, w = img.shape[:2]
    scale = text_scale(w)
    line_h = int(26 * scale) + 4
    names, colors = list(names)[:max_items], colors[:max_items]
    width = max((cv2.getTextSize(n, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)[0][0] for n in names),
                default=0) + line_h + 14
    y0 = max(0, h - line_h * (len(names) + 2) - 8)
    x0 = max(0, w - width - 6)
    region = img[y0:y0 + line_h * len(names) + 6, x0:]
    region[:] = (region.astype(np.float32) * 0.45).astype(np.uint8)
    for i, (name, color) in enumerate(zip(names, colors, strict=True)):
        y = y0 + line_h * i + 4
        cv2.rectangle(img, (x0 + 4, y), (x0 + line_h, y + line_h - 4),
                      tuple(int(c) for c in color), -1)
        cv2.putText(img, name, (x0 + line_h + 8, y + line_h - 8), cv2.FONT_HERSHEY_SIMPLEX,
                    scale, (255, 255, 255), 1, cv2.LINE_AA)


def draw_inset(img: np.ndarray, inset: np.ndarray, fraction: float = 0.25) -> None:
    """Paste ``inset`` (e.g. the camera picture) shrunk to ``fraction`` of the width into the
    bottom-left corner, above the help line."""
    cv2 = _cv2()
    h, w = img.shape[:2]
    iw = max(8, int(w * fraction))
    ih = max(8, int(inset.shape[0] * iw / inset.shape[1]))
    small = cv2.resize(inset, (iw, ih), interpolation=cv2.INTER_AREA)
    margin = int(40 * text_scale(w))
    y0 = max(0, h - ih - margin)
    img[y0:y0 + ih, 0:iw] = small[: h - y0]
