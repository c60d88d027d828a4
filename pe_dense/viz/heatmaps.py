"""Per-prompt score maps drawn on an image: one heat-map tile per prompt, captioned, in a row
(or a grid), for text-prompted segmentation (``pe-dense segment-text``, the demo's text mode).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["heatmap_overlay", "score_panel"]


def heatmap_overlay(image: np.ndarray, score: np.ndarray, alpha: float = 0.55,
                    cmap: str = "jet") -> np.ndarray:
    """image: (H, W, 3) uint8; score: (H, W) in [0, 1] -> (H, W, 3) uint8 blend (hot = high)."""
    from matplotlib import colormaps

    if score.shape != image.shape[:2]:
        raise ValueError(f"score map {score.shape} does not match image {image.shape[:2]}")
    heat = colormaps[cmap](np.clip(score, 0, 1))[..., :3] * 255
    return ((1 - alpha) * image + alpha * heat).round().astype(np.uint8)


def score_panel(image: np.ndarray, scores: np.ndarray, names: Sequence[str],
                columns: int = 4) -> np.ndarray:
    """image (H, W, 3) uint8, scores (K, H, W) in [0, 1], K names -> a grid of captioned
    heat-map tiles (rows of ``columns``), (rows * (H + 14), min(K, columns) * W, 3) uint8."""
    from PIL import Image, ImageDraw

    if len(names) != scores.shape[0]:
        raise ValueError(f"{scores.shape[0]} score maps but {len(names)} names")
    h, w = image.shape[:2]
    cols = max(1, min(columns, len(names)))
    rows = -(-len(names) // cols)
    canvas = Image.new("RGB", (cols * w, rows * (h + 14)), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    for k, name in enumerate(names):
        r, c = divmod(k, cols)
        tile = heatmap_overlay(image, scores[k])
        canvas.paste(Image.fromarray(tile), (c * w, r * (h + 14) + 14))
        draw.text((c * w + 4, r * (h + 14) + 1), f"{name} (max {scores[k].max():.2f})",
                  fill=(0, 0, 0))
    return np.asarray(canvas)
