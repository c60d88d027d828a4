"""The demo's ``text`` mode: per-pixel labels and one heat map per text prompt.

The model is a :class:`~pe_dense.tasks.open_vocab.model.TextSegmenter`: a PE-Core CLIP read
densely (:class:`~pe_dense.tasks.open_vocab.dense_clip.ClipSegmenter`, self-self recipe), or a
learned text bridge onto a PE-Spatial backbone (``--bridge``,
:func:`~pe_dense.tasks.open_vocab.bridge.load_bridge`). The frame shows the arg-max labels with
a legend, and a row of small heat maps (one per prompt, hot = high score) at the bottom left.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from pe_dense.demo.draw import draw_legend
from pe_dense.demo.modes import Mode
from pe_dense.demo.runtime import Runtime, StageTimer
from pe_dense.viz.heatmaps import heatmap_overlay
from pe_dense.viz.overlays import label_palette, overlay_labels

__all__ = ["TextMode", "build_text_model"]


def build_text_model(model: str, weights: str | None, prompts: Sequence[str],
                     bridge: str | None = None) -> torch.nn.Module:
    """The text segmenter for ``--prompts``: the ``--bridge`` file (on its PE-Spatial backbone,
    ``weights`` replacing the recorded backbone weights), else PE-Core ``model`` as a dense
    CLIP (a model without a text tower raises a ValueError that names the ones with one)."""
    if not prompts:
        raise ValueError("text mode needs prompts: --prompts 'sky,road,car'")
    if bridge is not None:
        from pe_dense.tasks.open_vocab.bridge import load_bridge

        return load_bridge(bridge, backbone_weights=weights, prompts=list(prompts))
    from pe_dense.backbone.clip import create_clip
    from pe_dense.tasks.open_vocab.dense_clip import ClipSegmenter

    return ClipSegmenter(create_clip(model, weights=weights), list(prompts))


def _thumbnails(out: np.ndarray, image: np.ndarray, scores: np.ndarray,
                names: Sequence[str], fraction: float = 0.2) -> None:
    """Paste one heat-map thumbnail per prompt in a row along the bottom-left of ``out``, above
    the help line and banner (the HUD takes the top, the legend the bottom right); in place."""
    import cv2

    h, w = out.shape[:2]
    th, tw = max(8, int(h * fraction)), max(8, int(w * fraction))
    small = cv2.resize(image, (tw, th), interpolation=cv2.INTER_AREA)
    for k, name in enumerate(names[: max(1, w // (tw + 4))]):
        score = cv2.resize(scores[k], (tw, th), interpolation=cv2.INTER_LINEAR)
        x0, y0 = 4 + k * (tw + 4), max(0, h - th - int(0.14 * h))
        out[y0:y0 + th, x0:x0 + tw] = heatmap_overlay(small, score)
        cv2.putText(out, name[:14], (x0 + 3, y0 + th - 5), cv2.FONT_HERSHEY_SIMPLEX, 0.35,
                    (255, 255, 255), 1, cv2.LINE_AA)


class TextMode(Mode):
    """Text-prompted segmentation: labels + legend, and a heat-map thumbnail per prompt.

    ``model``: a TextSegmenter (see :func:`build_text_model`); ``trained``: whether its weights
    were loaded (otherwise the screen says the maps are random).
    """

    name = "text"

    def __init__(self, runtime: Runtime, model: torch.nn.Module, trained: bool) -> None:
        super().__init__(runtime)
        self.model = model.to(runtime.device).eval()
        self.trained = trained
        self.palette = label_palette(len(model.class_names))
        self.notes = [] if trained else [
            "random text/vision weights: pass --weights (PE-Core) or --bridge for real maps"]

    def process(self, image: np.ndarray, timer: StageTimer) -> np.ndarray:
        from pe_dense.tasks.open_vocab.model import segment_image

        with timer("network"), self.runtime.autocast():
            labels, scores = segment_image(self.model, image, self.runtime.resolution)
        with timer("draw"):
            names = list(self.model.class_names)
            out = overlay_labels(image, labels.astype(np.uint8), self.palette, alpha=0.5)
            ids, counts = np.unique(labels, return_counts=True)
            order = ids[np.argsort(-counts)]
            draw_legend(out, [names[i] for i in order], self.palette[order])
            _thumbnails(out, image, scores, names)
        return out
