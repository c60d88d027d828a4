"""The demo mode of a task without a dedicated one: the model's own ``predict_images`` on the
frame (resized to the runtime's resolution), drawn by the task's description
(:mod:`pe_dense.tasks.description`) and fitted back into the frame."""

from __future__ import annotations

import numpy as np
import torch

from pe_dense.demo.modes import Mode, upsample_rgb
from pe_dense.demo.runtime import Runtime, StageTimer
from pe_dense.tasks.description import TaskDescription

__all__ = ["PredictionMode", "letterbox"]


def letterbox(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(h, w, 3) uint8 scaled to fit (H, W) with its aspect kept, centred on black."""
    h, w = size
    scale = min(h / image.shape[0], w / image.shape[1])
    nh, nw = max(1, round(image.shape[0] * scale)), max(1, round(image.shape[1] * scale))
    out = np.zeros((h, w, 3), np.uint8)
    y, x = (h - nh) // 2, (w - nw) // 2
    out[y:y + nh, x:x + nw] = upsample_rgb(image, (nh, nw))
    return out


class PredictionMode(Mode):
    """Any task model through ``predict_images`` and its description's ``draw``."""

    def __init__(self, runtime: Runtime, model: torch.nn.Module, trained: bool,
                 description: TaskDescription, class_names: tuple[str, ...] | None = None,
                 score_thresh: float = 0.5) -> None:
        super().__init__(runtime)
        self.name = description.mode
        self.model = model.to(runtime.device).eval()
        self.description, self.class_names = description, class_names
        self.score_thresh = score_thresh
        self.notes = [] if trained else [
            f"random {description.name} weights: pass --config CONFIG --checkpoint CKPT"]

    def process(self, image: np.ndarray, timer: StageTimer) -> np.ndarray:
        with timer("prep"):
            x = self.runtime.prepare(image)[0].permute(1, 2, 0).cpu().numpy()
        with timer("network"), torch.inference_mode(), self.runtime.autocast():
            (pred,) = self.model.predict_images([np.ascontiguousarray(x)])
        with timer("draw"):
            drawn = self.description.draw(x, pred, self.class_names, self.score_thresh)
            return letterbox(drawn, image.shape[:2])
