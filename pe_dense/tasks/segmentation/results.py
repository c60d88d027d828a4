"""Segmentation result files: one PNG label map per input (``out/pred/<key>.png``: pixel =
class index, a palette PNG coloured like the drawings) and, with ``save_logits``, the raw
class scores (``out/pred/<key>.npz``, ``logits`` (K, H, W) float32 at the image size)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from pe_dense.tasks.results import PredictItem, ResultWriter, save_npz, write_png

__all__ = ["LabelMapWriter"]


class LabelMapWriter(ResultWriter):
    """``save_logits``: also write ``<key>.npz`` (needs ``logits`` in the prediction)."""

    def __init__(self, out: Any, class_names: Sequence[str] | None = None, *,
                 save_logits: bool = False, **options: Any) -> None:
        super().__init__(out, class_names, **options)
        self.save_logits = save_logits
        self.suffixes = (".png", ".npz") if save_logits else (".png",)

    def write(self, item: PredictItem, prediction: Any) -> dict[str, Any]:
        from pe_dense.viz.overlays import label_palette

        labels = _labels(prediction)
        if labels.max(initial=0) > 255:
            raise ValueError(f"class index {int(labels.max())} does not fit a PNG label map "
                             "(at most 256 classes); use --save-logits")
        num = max(len(self.class_names or ()), int(labels.max(initial=0)) + 1)
        write_png(self.path(item, ".png"), labels.astype(np.uint8), label_palette(num))
        if self.save_logits:
            logits = prediction.get("logits") if isinstance(prediction, dict) else None
            if logits is None:
                raise ValueError("--save-logits needs the model's logits; this prediction has "
                                 "only labels")
            logits = logits.detach().cpu().numpy() if hasattr(logits, "detach") else logits
            save_npz(self.path(item, ".npz"), logits=np.asarray(logits, np.float32))
        ids, counts = np.unique(labels, return_counts=True)
        return {"classes": {int(i): int(c) for i, c in zip(ids, counts, strict=True)}}


def _labels(prediction: Any) -> np.ndarray:
    labels = prediction.get("pred", prediction.get("labels")) \
        if isinstance(prediction, dict) else prediction
    labels = labels.detach().cpu().numpy() if hasattr(labels, "detach") else np.asarray(labels)
    return labels.astype(np.int64)
