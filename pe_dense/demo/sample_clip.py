"""The built-in sample clip: a generated scene with a panning camera and a moving car.

Used when there is no ``--source`` and no camera, so ``pe-dense demo`` always shows something.
Frames are deterministic and need no files or downloads.
"""

from __future__ import annotations

import numpy as np

from pe_dense.data.samples import sample_image

__all__ = ["sample_clip_frame", "SampleClip"]


def _draw_car(img: np.ndarray, cx: float, base: float, scale: float) -> None:
    """Paint a small car (body, cabin, wheels) in place; coordinates in pixels."""
    h, w = img.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w]
    body_w, body_h = 0.9 * scale, 0.25 * scale
    body = (np.abs(xx - cx) < body_w / 2) & (yy > base - body_h) & (yy < base)
    cabin = ((np.abs(xx - cx + 0.05 * scale) < body_w / 4) & (yy > base - 1.9 * body_h)
             & (yy <= base - body_h))
    img[body] = (40, 70, 200)
    img[cabin] = (170, 200, 230)
    for dx in (-0.28, 0.28):
        wheel = (xx - cx - dx * scale) ** 2 + (yy - base) ** 2 < (0.1 * scale) ** 2
        img[wheel] = (25, 25, 25)


class SampleClip:
    """A deterministic clip of ``num_frames`` (height, width, 3) uint8 RGB frames.

    The camera pans across a scene twice as wide as the frame while a car drives across the
    ground, so features, depth, segmentation and tracking all have motion to show.
    """

    def __init__(self, num_frames: int = 32, height: int = 360, width: int = 480) -> None:
        if num_frames < 1 or height < 32 or width < 32:
            raise ValueError(f"sample clip needs >= 1 frame of at least 32x32, got "
                             f"{num_frames} frames of {width}x{height}")
        self.num_frames, self.height, self.width = num_frames, height, width
        self._scene = sample_image(height=height, width=2 * width, seed=0)

    def __len__(self) -> int:
        return self.num_frames

    def frame(self, index: int) -> np.ndarray:
        """Frame ``index`` (0-based): (height, width, 3) uint8 RGB."""
        if not 0 <= index < self.num_frames:
            raise IndexError(f"frame {index} outside 0..{self.num_frames - 1}")
        t = index / max(self.num_frames - 1, 1)
        x0 = int(round(t * self.width * 0.5))
        img = self._scene[:, x0:x0 + self.width].copy()
        cx, base, scale = self._car(index)
        _draw_car(img, cx=cx, base=base, scale=scale)
        return img

    def _car(self, index: int) -> tuple[float, float, float]:
        t = index / max(self.num_frames - 1, 1)
        return (0.15 + 0.7 * t) * self.width, 0.86 * self.height, 0.22 * self.width

    def object_box(self, index: int) -> tuple[int, int, int, int]:
        """The car's xyxy box in frame ``index`` (pixels): the clip's object to track."""
        cx, base, scale = self._car(index)
        return (int(cx - 0.45 * scale), int(base - 0.475 * scale),
                int(np.ceil(cx + 0.45 * scale)), min(self.height, int(np.ceil(base + 0.1 * scale))))


def sample_clip_frame(index: int, num_frames: int = 32, height: int = 360,
                      width: int = 480) -> np.ndarray:
    """One frame of the sample clip (convenience for tests and pictures)."""
    return SampleClip(num_frames, height, width).frame(index)
