"""mmengine glue for detection: registrations, the BaseModel adapter and the COCO metric.

Registered under scope ``pe_dense`` (the registries import this module on first lookup):

- ``MODELS``: ``"MaskRCNN"``, the library :class:`pe_dense.tasks.detection.model.MaskRCNN` as an
  mmengine model (:func:`pe_dense.engine.adapters.engine_model`, same state-dict keys);
- ``DATASETS``: ``"CocoDetection"`` (pipeline dicts resolved through ``TRANSFORMS``);
- ``TRANSFORMS``: ``RandomFlip``, ``LargeScaleJitter``, ``ResizeLongestSide``, ``PackDetInputs``;
- ``FUNCTIONS``: ``"detection_collate"`` (``collate_fn=dict(type="pe_dense.detection_collate")``);
- ``METRICS``: ``"CocoMetric"``, a thin ``BaseMetric`` over
  :class:`pe_dense.evaluation.coco.CocoEvaluator`.

:func:`configure_inputs` copies a config's test resize and collate padding into a built model,
so ``predict_images`` prepares images exactly as ``pe-dense test`` does.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping, Sequence
from typing import Any

from mmengine.evaluator import BaseMetric

from pe_dense.data import coco
from pe_dense.data.collate import detection_collate
from pe_dense.data.det_transforms import TRANSFORMS_BY_NAME
from pe_dense.engine.adapters import register_task
from pe_dense.engine.registry import DATASETS, METRICS, TRANSFORMS
from pe_dense.evaluation.coco import CocoEvaluator
from pe_dense.tasks.detection import model as det_model

__all__ = ["MaskRCNN", "CocoDetection", "CocoMetric", "configure_inputs"]

MaskRCNN = register_task(__name__, det_model.MaskRCNN,
                         collates={"detection_collate": detection_collate})
for _name, _cls in TRANSFORMS_BY_NAME.items():
    TRANSFORMS.register_module(name=_name, module=_cls)


@DATASETS.register_module()
class CocoDetection(coco.CocoDetection):
    """:class:`pe_dense.data.coco.CocoDetection` whose ``pipeline`` config dicts are built by the
    ``TRANSFORMS`` registry (so registered third-party transforms work too)."""

    def __init__(self, ann_file: str, img_dir: str, pipeline: Sequence[Any] | None = None,
                 **kwargs: Any) -> None:
        steps = [TRANSFORMS.build(t) if isinstance(t, Mapping) else t for t in pipeline or ()]
        super().__init__(ann_file, img_dir, steps or None, **kwargs)


@METRICS.register_module()
class CocoMetric(BaseMetric):
    """COCO AP (``bbox`` / ``segm``) of ``MaskRCNN`` predictions; arguments as
    :class:`~pe_dense.evaluation.coco.CocoEvaluator` (``outfile_dir``: the work dir when run by
    ``pe-dense``), plus mmengine's ``collect_device`` and ``prefix`` (default ``"coco"``)."""

    default_prefix = "coco"

    def __init__(self, ann_file: str, metric: str | Sequence[str] = ("bbox", "segm"),
                 outfile_dir: str | None = None, collect_device: str = "cpu",
                 prefix: str | None = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        self.evaluator = CocoEvaluator(ann_file, metric, outfile_dir)

    def process(self, data_batch: Any, data_samples: Sequence[dict[str, Any]]) -> None:
        self.results.extend(self.evaluator.process_one(pred) for pred in data_samples)

    def compute_metrics(self, results: list) -> dict[str, float]:
        return self.evaluator.evaluate(results)


def configure_inputs(model: Any, cfg: Any) -> None:
    """Set a detection model's :class:`~pe_dense.tasks.detection.model.DetInputs` from the
    config's ``test_dataloader``: the ``ResizeLongestSide`` size of its pipeline and its
    ``detection_collate`` padding. Other models are left alone."""
    model = getattr(model, "module", model)
    if not isinstance(model, det_model.MaskRCNN):
        return
    loader = cfg.get("test_dataloader") or {}
    pipeline = (loader.get("dataset") or {}).get("pipeline") or ()
    sizes = [t.get("size", 1024) for t in pipeline
             if isinstance(t, Mapping) and t.get("type") == "ResizeLongestSide"]
    collate = dict(loader.get("collate_fn") or {})
    if collate and not str(collate.pop("type", "")).endswith("detection_collate"):
        return
    defaults = {k: p.default for k, p in inspect.signature(detection_collate).parameters.items()
                if p.default is not inspect.Parameter.empty}
    model.inputs = det_model.DetInputs(
        resize=int(sizes[-1]) if sizes else 0,
        size_divisor=int(collate.get("size_divisor", defaults["size_divisor"])),
        square_size=int(collate.get("square_size", defaults["square_size"])))
