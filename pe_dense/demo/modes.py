"""Demo modes: each turns one RGB frame into an annotated RGB frame of the same size.

A mode owns what it needs on top of the shared :class:`Runtime` backbone (a PCA fit, a head,
a tracker) and reports its stages to a :class:`StageTimer`. ``notes`` are shown on screen
(e.g. "random head weights").
"""

from __future__ import annotations

import logging

import numpy as np
import torch
import torch.nn.functional as F

from pe_dense.demo.draw import draw_inset
from pe_dense.demo.runtime import Runtime, StageTimer
from pe_dense.viz.pca import PCAColorizer

__all__ = ["Mode", "FeaturesMode", "upsample_rgb"]

log = logging.getLogger(__name__)


def upsample_rgb(rgb: torch.Tensor | np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(h, w, 3) uint8 -> (H, W, 3) uint8, bilinear."""
    t = torch.as_tensor(rgb).permute(2, 0, 1)[None].float()
    t = F.interpolate(t, size=size, mode="bilinear", align_corners=False)
    out = t[0].permute(1, 2, 0).round().clamp(0, 255).to(torch.uint8).cpu().numpy()
    return np.ascontiguousarray(out)


class Mode:
    """Base class: ``process(image, timer)`` maps (H, W, 3) uint8 RGB to the same shape."""

    name = "mode"

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.notes: list[str] = []

    def process(self, image: np.ndarray, timer: StageTimer) -> np.ndarray:
        raise NotImplementedError

    def reset(self) -> None:
        """Forget state accumulated over frames (PCA fit, tracked object)."""


class FeaturesMode(Mode):
    """PCA of the patch features as colour, the way the PE and DINOv2 papers show features.

    The projection is fitted on the first ``fit_frames`` frames (refitted on all of them as
    they arrive) and then kept fixed, so colours stay stable over time; ``reset`` refits.
    ``layer``: 0-based block index (-1 the last). The camera picture is inset bottom-left.
    """

    name = "features"

    def __init__(self, runtime: Runtime, layer: int = -1, fit_frames: int = 4) -> None:
        super().__init__(runtime)
        self.layer, self.fit_frames = layer, max(1, fit_frames)
        self.reset()

    def reset(self) -> None:
        self.colorizer = PCAColorizer()
        self._fit_maps: list[torch.Tensor] = []

    @property
    def fitting(self) -> bool:
        return len(self._fit_maps) < self.fit_frames

    def process(self, image: np.ndarray, timer: StageTimer) -> np.ndarray:
        with timer("prep"):
            x = self.runtime.prepare(image)
        with timer("backbone"):
            (feats,) = self.runtime.features(x, [self.layer])
        with timer("pca"):
            fmap = feats[0]
            if self.fitting:
                self._fit_maps.append(fmap.cpu())
                self.colorizer.fit(self._fit_maps)
            rgb = self.colorizer.transform(fmap)
        with timer("draw"):
            out = upsample_rgb(rgb, image.shape[:2])
            draw_inset(out, image)
        self.notes = ([f"fitting PCA on frame {len(self._fit_maps)}/{self.fit_frames}"]
                      if self.fitting else [])
        return out
