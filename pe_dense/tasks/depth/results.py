"""Depth result files: one 16-bit PNG per input in millimetres (``out/pred/<key>.png``,
``round(depth_m * 1000)`` clipped to 0..65535, 0 = no depth: the convention of the NYU Depth v2
and KITTI tools) and, with ``save_raw``, float32 metres (``out/pred/<key>.npy``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from pe_dense.tasks.results import PredictItem, ResultWriter, save_npy, write_png

__all__ = ["DepthPngWriter", "depth_to_png", "png_to_depth"]


def depth_to_png(depth: np.ndarray) -> np.ndarray:
    """(H, W) metres -> uint16 millimetres (non-finite and negative -> 0, beyond 65.535 m
    clipped)."""
    mm = np.nan_to_num(np.asarray(depth, np.float64) * 1000.0, nan=0.0, posinf=0.0, neginf=0.0)
    return np.clip(np.rint(mm), 0, 65535).astype(np.uint16)


def png_to_depth(array: np.ndarray) -> np.ndarray:
    """uint16 millimetres -> float32 metres."""
    return np.asarray(array, np.float32) / 1000.0


class DepthPngWriter(ResultWriter):
    """``save_raw``: also write ``<key>.npy`` (float32 metres)."""

    def __init__(self, out: Any, class_names: Sequence[str] | None = None, *,
                 save_raw: bool = False, **options: Any) -> None:
        super().__init__(out, class_names, **options)
        self.save_raw = save_raw
        self.suffixes = (".png", ".npy") if save_raw else (".png",)

    def write(self, item: PredictItem, prediction: Any) -> dict[str, Any]:
        depth = _depth(prediction)
        write_png(self.path(item, ".png"), depth_to_png(depth))
        if self.save_raw:
            save_npy(self.path(item, ".npy"), depth.astype(np.float32))
        finite = depth[np.isfinite(depth)]
        low, high = (float(v) for v in (np.percentile(finite, [2, 98]) if finite.size
                                        else (0.0, 0.0)))
        return {"depth_m": {"p2": round(low, 4), "p98": round(high, 4)}}


def _depth(prediction: Any) -> np.ndarray:
    depth = prediction.get("pred_depth", prediction.get("depth")) \
        if isinstance(prediction, dict) else prediction
    depth = depth.detach().cpu().numpy() if hasattr(depth, "detach") else np.asarray(depth)
    return np.asarray(depth, np.float32).squeeze()
