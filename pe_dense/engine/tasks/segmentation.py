"""mmengine glue for semantic segmentation.

Registers, in :mod:`pe_dense.engine.registry` (scope ``pe_dense``), under the names configs
use: the model ``Segmentor`` (:class:`pe_dense.tasks.segmentation.model.Segmentor` as an
mmengine ``BaseModel``, same state-dict keys), the datasets ``SegFolderDataset`` /
``ADE20KDataset``, the collate function ``pe_dense.seg_collate`` and the metric
``SegIoUMetric``. The registries import this module on first lookup.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from mmengine.evaluator import BaseMetric

from pe_dense.data.segmentation import ADE20KDataset, SegFolderDataset, seg_collate
from pe_dense.engine.adapters import register_task
from pe_dense.engine.registry import METRICS
from pe_dense.evaluation.segmentation import image_areas, summarize_areas
from pe_dense.tasks.segmentation.model import Segmentor as LibrarySegmentor

__all__ = ["Segmentor", "SegIoUMetric"]

Segmentor = register_task(__name__, LibrarySegmentor, datasets=(SegFolderDataset, ADE20KDataset),
                          collates={"seg_collate": seg_collate})


@METRICS.register_module()
class SegIoUMetric(BaseMetric):
    """mIoU / mAcc / aAcc with mmseg's ``IoUMetric`` definitions, over
    :mod:`pe_dense.evaluation.segmentation`: per-image class areas in ``self.results`` (so
    they gather across DDP ranks), summed over the dataset in ``compute_metrics``. Needs the
    ground truth at the prediction's size (``"label"`` in the model's ``predict`` outputs)."""

    default_prefix = ""

    def __init__(self, *, num_classes: int, ignore_index: int = 255,
                 class_names: Sequence[str] | None = None, collect_device: str = "cpu",
                 prefix: str | None = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        self.num_classes, self.ignore_index = num_classes, ignore_index
        self.class_names = tuple(class_names) if class_names else None

    def process(self, data_batch: Any, data_samples: Sequence[dict]) -> None:
        for out in data_samples:
            if "label" not in out:
                raise ValueError("SegIoUMetric needs ground-truth labels: evaluate a split "
                                 "whose samples have labels")
            self.results.append(image_areas(out["pred"], out["label"], self.num_classes,
                                            self.ignore_index))

    def compute_metrics(self, results: list) -> dict[str, float]:
        if not results:
            raise RuntimeError("SegIoUMetric: no images were evaluated (empty split)")
        return summarize_areas(results, self.class_names)
