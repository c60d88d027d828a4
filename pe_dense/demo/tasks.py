"""Depth, segmentation and detection modes on the task models of :mod:`pe_dense.tasks`
(``DepthEstimator``, ``Segmentor``, ``MaskRCNN``), either trained (``--config --checkpoint``)
or built on the demo's backbone with randomly initialised heads (said on screen).

Each frame is resized to the model's input contract (:meth:`Runtime.input_size_for
<pe_dense.demo.runtime.Runtime.input_size_for>`: ``--resolution`` short side, the long side capped
at a detector's square size), so a camera's native frame size always fits. Modes call the models'
own stages: ``preprocess`` (normalise the uint8 batch padded once by
:func:`pe_dense.data.collate.pad_images`), ``encode`` (backbone and neck), ``decode`` (head) and,
for detection, ``postprocess`` (boxes and masks in original pixels).
"""

from __future__ import annotations

import logging

import numpy as np
import torch
import torch.nn.functional as F

from pe_dense.data.coco import COCO_CLASSES
from pe_dense.data.collate import pad_images
from pe_dense.demo.draw import draw_boxes, draw_inset, draw_legend
from pe_dense.demo.modes import Mode
from pe_dense.demo.runtime import Runtime, StageTimer
from pe_dense.viz.overlays import colorize_depth, label_palette, overlay_labels, overlay_masks

__all__ = ["DepthMode", "SegMode", "DetMode"]

log = logging.getLogger(__name__)


def _resize_nearest(labels: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    import cv2

    return cv2.resize(labels, (size[1], size[0]), interpolation=cv2.INTER_NEAREST)


class _TaskMode(Mode):
    """Common part: the task model on the runtime's device, eval mode, and its screen note."""

    def __init__(self, runtime: Runtime, model: torch.nn.Module, trained: bool,
                 what: str) -> None:
        super().__init__(runtime)
        self.model = model.to(runtime.device).eval()
        self.trained = trained
        self.base_notes = [] if trained else [
            f"random {what} weights: pass --config CONFIG --checkpoint CKPT for a trained one"]
        self.notes = list(self.base_notes)

    def _run(self):
        return torch.inference_mode(), self.runtime.autocast()

    def _inputs(self, image: np.ndarray) -> tuple[torch.Tensor, tuple[int, int]]:
        """(H, W, 3) uint8 -> the model's normalised (1, 3, Hp, Wp) input and the unpadded
        network size (h, w). The frame is resized to the model's input contract (the runtime's
        resolution, the long side capped at the model's square size when it pads to one), then
        padded once with the model's size divisor (or square size); results are mapped back to
        the frame's pixels by the modes."""
        square = int(getattr(self.model, "square_size", 0) or 0)
        x = self.runtime.prepare(image, square_size=square)
        size = (int(x.shape[-2]), int(x.shape[-1]))
        batch = pad_images([x[0]], self.model.size_divisor, square)
        return self.model.preprocess(batch, [size]), size

    def _network(self, x: torch.Tensor, timer: StageTimer, *decode_args) -> torch.Tensor:
        """``decode(encode(x), *decode_args)`` under inference mode and autocast, timed as the
        "backbone" and "head" stages."""
        inference, autocast = self._run()
        with inference, autocast:
            with timer("backbone"):
                features = self.model.encode(x)
            with timer("head"):
                return self.model.decode(features, *decode_args)


class DepthMode(_TaskMode):
    """Colour-mapped metric depth (near = warm). The colour range follows the 2-98th
    percentiles smoothed over frames, so colours do not flicker."""

    name = "depth"

    def __init__(self, runtime: Runtime, model: torch.nn.Module, trained: bool) -> None:
        super().__init__(runtime, model, trained, "depth head")
        self.range: tuple[float, float] | None = None

    def reset(self) -> None:
        self.range = None

    def process(self, image: np.ndarray, timer: StageTimer) -> np.ndarray:
        with timer("prep"):
            x, (h, w) = self._inputs(image)
        depth = self._network(x, timer, tuple(x.shape[-2:]))
        with timer("draw"):
            depth = depth[0, 0, :h, :w].float()
            depth = F.interpolate(depth[None, None], size=image.shape[:2], mode="bilinear",
                                  align_corners=False)[0, 0].cpu().numpy()
            low, high = (float(v) for v in np.percentile(depth, [2, 98]))
            if self.range is not None:
                low = 0.9 * self.range[0] + 0.1 * low
                high = 0.9 * self.range[1] + 0.1 * high
            self.range = (low, high)
            out = np.ascontiguousarray(colorize_depth(depth, low, high))
            draw_inset(out, image)
        self.notes = self.base_notes + [f"depth {low:.2f} m (warm) .. {high:.2f} m (cold)"]
        return out


class SegMode(_TaskMode):
    """Semantic segmentation overlay with a legend of the classes on screen (largest first)."""

    name = "seg"

    def __init__(self, runtime: Runtime, model: torch.nn.Module, trained: bool,
                 class_names: tuple[str, ...] | None = None) -> None:
        super().__init__(runtime, model, trained, "segmentation head")
        n = model.num_classes
        self.class_names = tuple(class_names or getattr(model, "class_names", None)
                                 or [f"class {i}" for i in range(n)])
        self.palette = label_palette(n)

    def process(self, image: np.ndarray, timer: StageTimer) -> np.ndarray:
        with timer("prep"):
            x, (h, w) = self._inputs(image)
        logits = self._network(x, timer, tuple(x.shape[-2:]))
        with timer("draw"):
            scale = logits.shape[-1] / x.shape[-1]
            h, w = round(h * scale), round(w * scale)
            labels = logits[0, :, :h, :w].argmax(0).to(torch.uint8).cpu().numpy()
            labels = _resize_nearest(labels, image.shape[:2])
            out = overlay_labels(image, labels, self.palette, alpha=0.55)
            ids, counts = np.unique(labels, return_counts=True)
            order = ids[np.argsort(-counts)]
            draw_legend(out, [self.class_names[i] for i in order], self.palette[order])
        return out


class DetMode(_TaskMode):
    """Instance masks, boxes, class labels and scores from Mask R-CNN.

    Shows detections scoring at least ``score_thresh``, at most ``max_dets``; with random
    heads no score passes, so the ``max_dets`` best are shown and marked as such.
    """

    name = "det"

    def __init__(self, runtime: Runtime, model: torch.nn.Module, trained: bool,
                 class_names: tuple[str, ...] | None = None, score_thresh: float = 0.5,
                 max_dets: int = 20) -> None:
        super().__init__(runtime, model, trained, "detection heads")
        n = model.num_classes
        self.class_names = tuple(class_names or (COCO_CLASSES if n == 80 else
                                                 [f"class {i}" for i in range(n)]))
        self.palette = label_palette(n)
        self.score_thresh, self.max_dets = score_thresh, max_dets

    def detect(self, image: np.ndarray, timer: StageTimer | None = None) -> dict:
        """(H, W, 3) uint8 -> ``{"boxes" (N, 4) xyxy pixels, "scores", "labels", "masks"
        (N, H, W) bool}`` as numpy, best first, filtered as described in the class."""
        timer = timer or StageTimer()
        with timer("prep"):
            x, (h, w) = self._inputs(image)
        h0, w0 = image.shape[:2]
        sample = {"img_size": (h, w), "ori_size": (h0, w0), "scale": (h / h0, w / w0)}
        det = self._network(x, timer, [(h, w)])[0]
        det = {k: v.cpu() if isinstance(v, torch.Tensor) else v
               for k, v in self.model.postprocess(det, sample).items()}
        scores = det["scores"].float().numpy()
        keep = np.argsort(-scores)
        if self.trained or (scores >= self.score_thresh).any():
            keep = keep[scores[keep] >= self.score_thresh]
        keep = keep[: self.max_dets]
        masks = det.get("masks")
        return {"boxes": det["boxes"].float().numpy()[keep], "scores": scores[keep],
                "labels": det["labels"].numpy()[keep],
                "masks": masks.numpy()[keep] if masks is not None else None}

    def first_box(self, image: np.ndarray) -> tuple[int, int, int, int] | None:
        """The best detection's box (for track mode), None when nothing is detected."""
        det = self.detect(image)
        if not len(det["boxes"]):
            return None
        return tuple(int(round(v)) for v in det["boxes"][0])

    def process(self, image: np.ndarray, timer: StageTimer) -> np.ndarray:
        det = self.detect(image, timer)
        with timer("draw"):
            colors = self.palette[det["labels"]] if len(det["labels"]) else np.zeros((0, 3))
            out = image.copy()
            if det["masks"] is not None and len(det["masks"]):
                out = overlay_masks(out, det["masks"], colors, alpha=0.45)
            names = [f"{self.class_names[c]} {s:.2f}" for c, s in
                     zip(det["labels"], det["scores"], strict=True)]
            draw_boxes(out, det["boxes"], names, colors)
        below = not self.trained and len(det["scores"]) and det["scores"].max() < self.score_thresh
        self.notes = self.base_notes + (
            [f"no score >= {self.score_thresh}: showing the {len(names)} best"] if below else [])
        if not len(names):
            self.notes.append("no detections")
        return out
