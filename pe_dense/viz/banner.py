"""The random-weights banner: every picture or video frame drawn from a model whose weights
were not loaded carries it, so random outputs are never mistaken for a trained model's.

``mark_random(image, random)`` is the one call the writers use (features pictures, demo frames,
tracking overlays, predict drawings); ``weights_record(source)`` is what JSON/CSV outputs store
(``None`` for random weights).
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

__all__ = ["RANDOM_WEIGHTS", "BANNER_COLOR", "banner_height", "add_banner", "mark_random",
           "has_banner", "weights_record"]

RANDOM_WEIGHTS = "random weights - not a trained model"
BANNER_COLOR = (200, 0, 0)


def banner_height(height: int, width: int) -> int:
    """Pixel height of the band at the bottom of an (height, width) picture."""
    return int(min(height // 4, max(12, min(width // 20, height // 10))))


def add_banner(image: np.ndarray, text: str = RANDOM_WEIGHTS, inplace: bool = False
               ) -> np.ndarray:
    """A red band with ``text`` in white across the bottom of ``image``.

    image: (H, W, 3) uint8 RGB. Returns the same shape (``image`` itself when ``inplace``).
    The text is scaled to the band and shrunk to fit the width.
    """
    from PIL import Image, ImageDraw, ImageFont

    out = image if inplace else image.copy()
    h, w = out.shape[:2]
    band = banner_height(h, w)
    if band < 1:
        return out
    size = max(8, int(band * 0.75))
    probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    font = ImageFont.load_default(size=size)
    while size > 6 and probe.textlength(text, font=font) > w - 8:
        size -= 1
        font = ImageFont.load_default(size=size)
    strip = Image.new("RGB", (w, band), BANNER_COLOR)
    draw = ImageDraw.Draw(strip)
    text_w = probe.textlength(text, font=font)
    draw.text((max(2, (w - text_w) / 2), band / 2), text, fill=(255, 255, 255), font=font,
              anchor="lm")
    out[h - band:] = np.asarray(strip)
    return out


def mark_random(image: np.ndarray, random: bool, inplace: bool = False) -> np.ndarray:
    """``image`` with the random-weights banner when ``random``, else unchanged."""
    return add_banner(image, inplace=inplace) if random else image


def has_banner(image: np.ndarray) -> bool:
    """Whether ``image`` (H, W, 3) carries the banner: the top row and the left column of its
    bottom band (where no text reaches) are the banner colour."""
    h, w = image.shape[:2]
    band = banner_height(h, w)
    if band < 1:
        return False
    edge = np.concatenate([image[h - band], image[h - band:, 0]], axis=0)
    return bool((edge == np.asarray(BANNER_COLOR, np.uint8)).all())


def weights_record(source: Any) -> str | None:
    """What outputs record as ``weights``: the checkpoint path / spec as text, None when the
    weights are random (not loaded), "<state dict>" for an in-memory one."""
    if source is None:
        return None
    if isinstance(source, (str, os.PathLike)):
        return str(source)
    return "<state dict>"
