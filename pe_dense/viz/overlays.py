"""Predictions drawn on images with numpy and PIL (the one backend for pictures written to files):
class palettes, depth colouring, mask and label overlays, detections, segmentation and depth
panels. All take and return (H, W, 3) uint8 RGB arrays.
"""

from __future__ import annotations

import numpy as np

__all__ = ["label_palette", "colorize_depth", "overlay_masks", "overlay_labels",
           "draw_segmentation", "draw_depth", "draw_detections"]


def label_palette(num: int, seed: int = 3) -> np.ndarray:
    """(num, 3) uint8 RGB colours, distinct and bright, the same for the same ``num``/``seed``."""
    rng = np.random.default_rng(seed)
    hues = (np.arange(num) * 0.618034 + rng.random()) % 1.0
    h6 = hues * 6
    x = 1 - np.abs(h6 % 2 - 1)
    zeros, ones = np.zeros(num), np.ones(num)
    sector = h6.astype(int) % 6
    table = [(ones, x, zeros), (x, ones, zeros), (zeros, ones, x),
             (zeros, x, ones), (x, zeros, ones), (ones, zeros, x)]
    rgb = np.stack([np.choose(sector, [t[c] for t in table]) for c in range(3)], -1)
    return (55 + 200 * rgb).astype(np.uint8)


def colorize_depth(depth: np.ndarray, low: float | None = None, high: float | None = None,
                   cmap: str = "turbo") -> np.ndarray:
    """(H, W) depth (any unit) -> (H, W, 3) uint8 RGB; near is warm for ``turbo``.

    ``low``/``high`` fix the colour range (e.g. kept over a video); by default the 2nd and 98th
    percentiles of this map. Non-finite values are drawn black.
    """
    from matplotlib import colormaps

    depth = np.asarray(depth, dtype=np.float32)
    if depth.ndim != 2:
        raise ValueError(f"expected an (H, W) depth map, got shape {depth.shape}")
    finite = np.isfinite(depth)
    if low is None or high is None:
        vals = depth[finite] if finite.any() else np.zeros(1, np.float32)
        low, high = (float(v) for v in np.percentile(vals, [2, 98]))
    t = np.clip((depth - low) / max(high - low, 1e-6), 0, 1)
    rgb = colormaps[cmap](1.0 - t)[..., :3]
    rgb[~finite] = 0
    return (rgb * 255).round().astype(np.uint8)


def overlay_masks(image: np.ndarray, masks: np.ndarray, colors: np.ndarray,
                  alpha: float = 0.5) -> np.ndarray:
    """Blend boolean ``masks`` (N, H, W) onto ``image`` (H, W, 3) uint8 with ``colors``
    (N, 3) uint8; later masks are drawn over earlier ones. Returns a new uint8 image."""
    if masks.ndim != 3 or masks.shape[1:] != image.shape[:2]:
        raise ValueError(f"masks {masks.shape} do not match image {image.shape[:2]}")
    out = image.astype(np.float32)
    for mask, color in zip(masks, np.asarray(colors, np.float32), strict=True):
        out[mask] = (1 - alpha) * out[mask] + alpha * color
    return out.round().astype(np.uint8)


def overlay_labels(image: np.ndarray, labels: np.ndarray, palette: np.ndarray,
                   alpha: float = 0.5, ignore: int | None = None) -> np.ndarray:
    """Blend an (H, W) integer label map onto ``image`` (H, W, 3) uint8 using ``palette``
    (K, 3) uint8; pixels equal to ``ignore`` keep the image."""
    if labels.shape != image.shape[:2]:
        raise ValueError(f"labels {labels.shape} do not match image {image.shape[:2]}")
    color = palette[np.clip(labels, 0, len(palette) - 1)].astype(np.float32)
    out = (1 - alpha) * image.astype(np.float32) + alpha * color
    if ignore is not None:
        keep = labels == ignore
        out[keep] = image[keep]
    return out.round().astype(np.uint8)


def _text_width(draw, text: str) -> int:
    left, _, right, _ = draw.textbbox((0, 0), text)
    return right - left


def draw_segmentation(image: np.ndarray, labels: np.ndarray,
                      class_names: list[str] | tuple[str, ...] | None = None,
                      palette: np.ndarray | None = None, alpha: float = 0.5,
                      ignore_index: int | None = None, max_legend: int = 30) -> np.ndarray:
    """Segmentation overlay with a legend panel on the right.

    image: (H, W, 3) uint8 RGB; labels: (H, W) integer class map at the image size. The legend
    lists the classes present (largest area first, at most ``max_legend``) with their colour
    and pixel share. ``palette`` defaults to :func:`label_palette` over the classes.
    Returns (H, W + legend width, 3) uint8.
    """
    from PIL import Image, ImageDraw

    labels = np.asarray(labels)
    if labels.shape != image.shape[:2]:
        raise ValueError(f"labels {labels.shape} do not match image {image.shape[:2]}: resize "
                         "the prediction to the image first")
    num = len(class_names) if class_names else int(labels.max(initial=0)) + 1
    palette = label_palette(max(num, 1)) if palette is None else np.asarray(palette, np.uint8)
    names = list(class_names) if class_names else [f"class {i}" for i in range(num)]
    overlay = overlay_labels(image, labels, palette, alpha=alpha, ignore=ignore_index)
    ids, counts = np.unique(labels, return_counts=True)
    keep = ids != ignore_index if ignore_index is not None else np.ones_like(ids, bool)
    ids, counts = ids[keep], counts[keep]
    order = np.argsort(-counts)[:max_legend]
    row = 14
    lines = [(int(ids[i]), f"{names[ids[i]] if ids[i] < len(names) else ids[i]} "
                           f"{100 * counts[i] / labels.size:.0f}%") for i in order]
    probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    width = 24 + max((_text_width(probe, t) for _, t in lines), default=40) + 8
    panel = Image.new("RGB", (width, image.shape[0]), (255, 255, 255))
    draw = ImageDraw.Draw(panel)
    for k, (cls, text) in enumerate(lines):
        y = 4 + k * row
        if y + row > image.shape[0]:
            break
        color = tuple(int(c) for c in palette[min(cls, len(palette) - 1)])
        draw.rectangle([4, y + 1, 16, y + row - 3], fill=color, outline=(0, 0, 0))
        draw.text((22, y), text, fill=(0, 0, 0))
    return np.concatenate([overlay, np.asarray(panel)], axis=1)


def draw_depth(image: np.ndarray, depth: np.ndarray, low: float | None = None,
               high: float | None = None, cmap: str = "turbo", unit: str = "m") -> np.ndarray:
    """Image, colour-mapped depth and a colour bar with ticks, side by side.

    image: (H, W, 3) uint8 RGB; depth: (H, W) in ``unit`` (metres for pe_dense models), any
    size (resized to the image, nearest). ``low``/``high``: colour range (default 2nd/98th
    percentile, see :func:`colorize_depth`; near is warm). Returns (H, 2W + bar, 3) uint8.
    """
    from PIL import Image, ImageDraw

    depth = np.asarray(depth, dtype=np.float32)
    if depth.ndim != 2:
        raise ValueError(f"expected an (H, W) depth map, got shape {depth.shape}")
    h, w = image.shape[:2]
    if depth.shape != (h, w):
        depth = np.asarray(Image.fromarray(depth, mode="F").resize((w, h), Image.NEAREST))
    finite = np.isfinite(depth)
    if low is None or high is None:
        vals = depth[finite] if finite.any() else np.zeros(1, np.float32)
        low, high = (float(v) for v in np.percentile(vals, [2, 98]))
    colored = colorize_depth(depth, low, high, cmap)
    bar_w, margin = 16, 6
    ramp = np.linspace(low, high, max(h - 2 * margin, 2), dtype=np.float32)[:, None]
    bar = colorize_depth(np.repeat(ramp, bar_w, axis=1), low, high, cmap)
    panel = Image.new("RGB", (bar_w + 64, h), (255, 255, 255))
    panel.paste(Image.fromarray(bar), (4, margin))
    draw = ImageDraw.Draw(panel)
    for k in range(5):
        value = low + (high - low) * k / 4
        y = margin + round((len(ramp) - 1) * k / 4)
        draw.line([(4 + bar_w, y), (8 + bar_w, y)], fill=(0, 0, 0))
        draw.text((10 + bar_w, max(0, min(y - 5, h - 12))), f"{value:.2f} {unit}", fill=(0, 0, 0))
    return np.concatenate([image, colored, np.asarray(panel)], axis=1)


def draw_detections(image: np.ndarray, boxes: np.ndarray, labels: np.ndarray,
                    scores: np.ndarray | None = None, masks: np.ndarray | None = None,
                    class_names: list[str] | tuple[str, ...] | None = None,
                    score_threshold: float = 0.5, alpha: float = 0.45) -> np.ndarray:
    """Instances drawn on an image: mask overlay, box outline and a ``name score`` tag.

    image: (H, W, 3) uint8 RGB; boxes: (N, 4) xyxy pixels; labels: (N,) 0-based class ids;
    scores: (N,) or None; masks: (N, H, W) bool or None. Instances below ``score_threshold``
    are skipped; colours follow the class (:func:`label_palette`). Returns (H, W, 3) uint8.
    """
    from PIL import Image, ImageDraw

    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    labels = np.asarray(labels).reshape(-1).astype(int)
    scores = np.ones(len(boxes), np.float32) if scores is None else np.asarray(scores).reshape(-1)
    if not len(boxes) == len(labels) == len(scores):
        raise ValueError(f"{len(boxes)} boxes, {len(labels)} labels and {len(scores)} scores "
                         "must have the same length")
    keep = scores >= score_threshold
    num = len(class_names) if class_names else int(labels.max(initial=0)) + 1
    palette = label_palette(max(num, 1))
    colors = palette[np.clip(labels[keep], 0, len(palette) - 1)]
    out = image
    if masks is not None and keep.any():
        out = overlay_masks(image, np.asarray(masks, bool)[keep], colors, alpha=alpha)
    canvas = Image.fromarray(out)
    draw = ImageDraw.Draw(canvas)
    for box, label, score, color in zip(boxes[keep], labels[keep], scores[keep], colors,
                                        strict=True):
        color = tuple(int(c) for c in color)
        draw.rectangle([float(v) for v in box], outline=color, width=2)
        name = class_names[label] if class_names and label < len(class_names) else str(label)
        text = f"{name} {score:.2f}"
        x, y = float(box[0]), max(0.0, float(box[1]) - 12)
        draw.rectangle([x, y, x + draw.textlength(text) + 4, y + 12], fill=color)
        draw.text((x + 2, y), text, fill=(0, 0, 0))
    return np.asarray(canvas)
