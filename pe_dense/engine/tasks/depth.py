"""mmengine glue for monocular depth, registered under the names the configs use (scope
``pe_dense``; the registries import this module on their first lookup):

- model ``DepthEstimator``: the library's :class:`pe_dense.tasks.depth.model.DepthEstimator`
  turned into a ``BaseModel`` by :func:`pe_dense.engine.adapters.engine_model` (checkpoints
  keep their keys);
- datasets ``NYUFolderDataset``, ``NYUSplitDataset``; collate ``pe_dense.depth_collate``;
- metric ``DepthMetric`` over :mod:`pe_dense.evaluation.depth`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from mmengine.evaluator import BaseMetric

from pe_dense.data.depth import NYUFolderDataset, NYUSplitDataset, depth_collate
from pe_dense.engine.adapters import register_task
from pe_dense.engine.registry import METRICS
from pe_dense.evaluation.depth import METRIC_NAMES, average_errors, image_errors
from pe_dense.tasks.depth.model import DepthEstimator as LibraryDepthEstimator

__all__ = ["DepthEstimator", "DepthMetric"]

log = logging.getLogger(__name__)

DepthEstimator = register_task(__name__, LibraryDepthEstimator,
                               datasets=(NYUFolderDataset, NYUSplitDataset),
                               collates={"depth_collate": depth_collate})


@METRICS.register_module()
class DepthMetric(BaseMetric):
    """delta1/2/3, AbsRel, SqRel, RMSE, RMSE_log, log10, SILog per image (Eigen crop, valid
    ``min_depth < gt < max_depth``), averaged over images, over :mod:`pe_dense.evaluation.depth`:
    per-image errors in ``self.results`` (so they gather across DDP ranks), averaged in
    ``compute_metrics``. Images without valid pixels are skipped and counted (``skipped``).
    Predictions are resized bilinearly to the ground truth."""

    default_prefix = ""

    def __init__(self, *, min_depth: float = 1e-3, max_depth: float = 10.0,
                 eigen_crop: bool = True, collect_device: str = "cpu",
                 prefix: str | None = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        self.min_depth, self.max_depth, self.eigen_crop = min_depth, max_depth, eigen_crop

    def process(self, data_batch: Any, data_samples: Sequence[dict]) -> None:
        for out in data_samples:
            if "gt_depth" not in out:
                raise ValueError("DepthMetric needs ground-truth depth in the samples")
            self.results.append(image_errors(out["pred_depth"], out["gt_depth"],
                                             self.min_depth, self.max_depth, self.eigen_crop))

    def compute_metrics(self, results: list) -> dict[str, float]:
        skipped = sum(r is None for r in results)
        if skipped:
            log.warning("DepthMetric: %d image(s) without valid ground truth skipped", skipped)
        if skipped == len(results):
            raise RuntimeError(f"DepthMetric: no image had valid ground truth ({skipped} "
                               "skipped): check depth units (metres) and min/max depth")
        errors = average_errors(results)
        return {**{k: round(errors[k], 4) for k in METRIC_NAMES}, "skipped": skipped}
