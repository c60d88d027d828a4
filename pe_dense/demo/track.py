"""Track mode: pick an object (mouse-drag box, first detection, or ``--track-box``), turn the box
into a first mask with the backbone's features, then follow it with the online label-propagation
tracker of :mod:`pe_dense.tracking`."""

from __future__ import annotations

import logging
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F

from pe_dense.data.transforms import size_to_multiple
from pe_dense.demo.draw import draw_boxes
from pe_dense.demo.modes import Mode
from pe_dense.demo.runtime import Runtime, StageTimer
from pe_dense.viz.overlays import overlay_masks

__all__ = ["TrackMode", "mask_from_box", "box_of_mask"]

log = logging.getLogger(__name__)

Box = tuple[int, int, int, int]


def box_of_mask(mask: np.ndarray) -> Box | None:
    """Tight xyxy box (pixels, end exclusive) of a boolean (H, W) mask, None when empty."""
    ys, xs = np.nonzero(mask)
    if not len(xs):
        return None
    return int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1


def mask_from_box(feats: torch.Tensor, box: Box, image_size: tuple[int, int]) -> np.ndarray:
    """An object mask inside ``box`` from patch features: a patch inside the box belongs to the
    object when its feature is closer (cosine) to the box-centre prototype than to the
    prototype of the patches outside the box. Falls back to the whole box when that leaves
    too little of it.

    feats: (C, h, w) features of the frame; box: xyxy in pixels of the (H, W) ``image_size``.
    Returns an (H, W) bool mask.
    """
    height, width = image_size
    c, h, w = feats.shape
    x0, y0, x1, y1 = box
    sx, sy = w / width, h / height
    px0, px1 = int(np.floor(x0 * sx)), max(int(np.ceil(x1 * sx)), int(np.floor(x0 * sx)) + 1)
    py0, py1 = int(np.floor(y0 * sy)), max(int(np.ceil(y1 * sy)), int(np.floor(y0 * sy)) + 1)
    inside = torch.zeros(h, w, dtype=torch.bool)
    inside[py0:py1, px0:px1] = True
    full = np.zeros(image_size, dtype=bool)
    full[max(0, y0):y1, max(0, x0):x1] = True
    if inside.all():
        return full
    f = F.normalize(feats.float().cpu(), dim=0)
    cy0, cy1 = py0 + (py1 - py0) // 4, py1 - (py1 - py0) // 4
    cx0, cx1 = px0 + (px1 - px0) // 4, px1 - (px1 - px0) // 4
    core = f[:, cy0:max(cy1, cy0 + 1), cx0:max(cx1, cx0 + 1)].flatten(1).mean(1)
    background = f[:, ~inside].mean(1)
    fg = (torch.einsum("chw,c->hw", f, core) > torch.einsum("chw,c->hw", f, background)) & inside
    if fg.sum() < 0.2 * inside.sum():
        return full
    up = F.interpolate(fg[None, None].float(), size=image_size, mode="nearest")[0, 0].numpy() > 0.5
    return up & full


class TrackMode(Mode):
    """Follows one object with :class:`pe_dense.tracking.Tracker`.

    The object comes from ``set_box`` (a window drag or ``--track-box``), else from
    ``initial_box(image)`` (e.g. the first detection of the det mode), else from ``hint()``
    (the built-in clip knows its car), else the centre of the frame; the HUD says which.
    """

    name = "track"

    def __init__(self, runtime: Runtime, layer: int = -1, box: Box | None = None,
                 initial_box: Callable[[np.ndarray], Box | None] | None = None) -> None:
        super().__init__(runtime)
        from pe_dense.tracking import Tracker

        self.layer = layer
        self.tracker = Tracker(runtime.backbone, layer=layer, short_side=runtime.resolution)
        self.initial_box = initial_box
        self.hint: Callable[[], Box | None] | None = None  # e.g. the sample clip's object
        self._pending_box = box
        self._started = False
        self._origin = ""

    def set_box(self, box: Box) -> None:
        """Track the object in ``box`` (xyxy pixels) from the next frame on."""
        self._pending_box, self._started = box, False

    def reset(self) -> None:
        self._started = False

    def _start(self, image: np.ndarray, timer: StageTimer) -> np.ndarray:
        h, w = image.shape[:2]
        box, self._origin = self._pending_box, "picked box"
        self._pending_box = None
        if box is None and self.initial_box is not None:
            with timer("detect"):
                box = self.initial_box(image)
            self._origin = "first detection"
        if box is None and self.hint is not None:
            box, self._origin = self.hint(), "the clip's object"
        if box is None:
            box, self._origin = (w // 3, h // 3, 2 * w // 3, 2 * h // 3), "frame centre"
        box = (max(0, box[0]), max(0, box[1]), min(w, box[2]), min(h, box[3]))
        with timer("init"):
            x = self.runtime.prepare(image)
            (feats,) = self.runtime.features(x, [self.layer])
            mask = mask_from_box(feats[0], box, (h, w))
            labels = self.tracker.reset(image, mask[None])
        self._started = True
        log.info("tracking the object in %s from the %s", box, self._origin)
        return labels

    def process(self, image: np.ndarray, timer: StageTimer) -> np.ndarray:
        if not self._started or self._pending_box is not None:
            labels = self._start(image, timer)
        else:
            with timer("track"):
                labels = self.tracker.update(image)
                self.runtime.input_size = size_to_multiple(
                    image.shape[:2], self.runtime.resolution, self.runtime.backbone.patch_size)
        with timer("draw"):
            mask = labels == 1
            out = overlay_masks(image, mask[None], np.array([[255, 60, 200]], np.uint8), 0.55)
            box = box_of_mask(mask)
            if box is not None:
                draw_boxes(out, np.array([box]), ["object"], np.array([[255, 60, 200]]))
        self.notes = [f"tracking ({self._origin}); drag a box to pick another object"]
        if box is None:
            self.notes.append("object lost: drag a box or press r")
        return out

