"""Built-in sample inputs, generated (no files, no downloads), for the README job and tests."""

from __future__ import annotations

import numpy as np

__all__ = ["sample_image"]


def sample_image(height: int = 480, width: int = 640, seed: int = 0) -> np.ndarray:
    """A deterministic synthetic scene: sky gradient, ground, sun, houses and a tree.

    Returns (height, width, 3) uint8 RGB.
    """
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    v, u = yy / height, xx / width
    img = np.empty((height, width, 3), np.float32)
    img[..., 0] = 90 + 80 * v
    img[..., 1] = 150 + 60 * v
    img[..., 2] = 235 - 30 * v
    horizon = 0.62 + 0.04 * np.sin(u * 6.0)
    ground = v > horizon
    img[ground] = np.stack([70 + 40 * v, 130 + 30 * v, 60 + 0 * v], -1)[ground]
    sun = (u - 0.82) ** 2 + ((v - 0.18) * height / width) ** 2 < 0.004
    img[sun] = (255, 220, 90)
    for x0, w, h, color in ((0.1, 0.18, 0.22, (200, 80, 60)), (0.45, 0.14, 0.3, (230, 210, 170))):
        body = (u > x0) & (u < x0 + w) & (v > 0.64 - h) & (v < 0.64)
        img[body] = color
        in_roof_band = (v < 0.64 - h) & (v > 0.64 - h - 0.1)
        roof = in_roof_band & (np.abs(u - x0 - w / 2) < (v - (0.54 - h)) * w * 5)
        img[roof] = (110, 50, 40)
        door = (u > x0 + w * 0.4) & (u < x0 + w * 0.6) & (v > 0.56) & (v < 0.64)
        img[door] = (70, 40, 25)
    trunk = (np.abs(u - 0.72) < 0.012) & (v > 0.45) & (v < 0.68)
    img[trunk] = (100, 70, 40)
    crown = (u - 0.72) ** 2 + ((v - 0.4) * height / width) ** 2 < 0.0045
    img[crown] = (40, 120, 45)
    img += rng.normal(0, 4, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)
