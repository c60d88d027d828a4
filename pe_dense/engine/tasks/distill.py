"""mmengine glue for spatial-alignment distillation.

Registers, in :mod:`pe_dense.engine.registry` (scope ``pe_dense``), under the names configs use:

- ``MODELS``: ``"DistillModel"``, the library :class:`pe_dense.distill.model.DistillModel` as an
  mmengine model (:func:`pe_dense.engine.adapters.engine_model`, same state-dict keys), with
  :data:`TEACHER_BUILDERS` (SAM 2 through :mod:`pe_dense.integrations.sam2`) and
  :class:`DistillDataPreprocessor` as defaults;
- ``DATASETS``: ``"DistillImageDataset"`` (:class:`pe_dense.distill.data.DistillImageDataset`);
- ``METRICS``: ``"DistillMetric"``, the mean over held-out images of every per-image alignment
  number of the model's ``predict`` (``<teacher>_cos``, ``<teacher>_corr``);
- ``HOOKS``: ``"ExportStudentHook"``, which writes ``<work_dir>/student.pt`` (official layout,
  ``create_backbone(variant, weights=...)``) and ``distill_heads.pt`` (projections and the model
  config) at every checkpoint and at the end of training
  (:func:`pe_dense.distill.model.export_run`);
- ``OPTIMIZERS``: ``"Lamb"``, timm's LAMB, so configs can say ``type="Lamb"``.

The registries import this module on first lookup; configs need no ``custom_imports``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from mmengine.evaluator import BaseMetric
from mmengine.hooks import Hook
from mmengine.model import BaseDataPreprocessor

from pe_dense.distill.data import DistillImageDataset
from pe_dense.distill.model import DistillModel as LibraryDistillModel
from pe_dense.distill.model import export_run
from pe_dense.distill.teachers import TeacherBuilder
from pe_dense.engine.adapters import engine_model
from pe_dense.engine.registry import DATASETS, HOOKS, METRICS, MODELS, OPTIMIZERS
from pe_dense.integrations.sam2 import build_sam2_teacher

__all__ = ["DistillModel", "DistillDataPreprocessor", "DistillMetric", "ExportStudentHook",
           "TEACHER_BUILDERS", "lamb"]

# Builders of the teacher kinds the library does not build itself (it never imports sam2).
TEACHER_BUILDERS: dict[str, TeacherBuilder] = {"sam2": build_sam2_teacher}

DATASETS.register_module(module=DistillImageDataset)


@MODELS.register_module()
class DistillDataPreprocessor(BaseDataPreprocessor):
    """Moves a ``default_collate`` batch of :class:`DistillImageDataset` items to the device and
    hands it to the model as ``inputs`` = ``image`` (B, 3, S, S) uint8 and ``data_samples`` =
    ``targets`` (cached teacher maps ``{teacher: (B, C, h, w)}``, or None)."""

    def forward(self, data: Mapping[str, Any], training: bool = False) -> dict[str, Any]:
        data = self.cast_data(dict(data))
        if "inputs" in data:  # already in the adapter's form
            return data
        return {"inputs": data["image"], "data_samples": data.get("targets")}


@MODELS.register_module(name="DistillModel")
class DistillModel(engine_model(LibraryDistillModel, __name__)):
    """mmengine model of :class:`pe_dense.distill.model.DistillModel` (same arguments and
    state-dict keys); ``data_preprocessor`` defaults to :class:`DistillDataPreprocessor` and
    ``teacher_builders`` to :data:`TEACHER_BUILDERS`."""

    def __init__(self, *, data_preprocessor: Any = None,
                 teacher_builders: Mapping[str, TeacherBuilder] | None = None,
                 **kwargs: Any) -> None:
        super().__init__(
            data_preprocessor=(DistillDataPreprocessor() if data_preprocessor is None
                               else data_preprocessor),
            teacher_builders=TEACHER_BUILDERS if teacher_builders is None else teacher_builders,
            **kwargs)


@METRICS.register_module()
class DistillMetric(BaseMetric):
    """Mean over held-out images of every per-image alignment number."""

    default_prefix = "distill"

    def process(self, data_batch: Any, data_samples: list[dict[str, float]]) -> None:
        self.results.extend(data_samples)

    def compute_metrics(self, results: list[dict[str, float]]) -> dict[str, float]:
        keys = sorted({k for r in results for k in r})
        return {k: sum(r[k] for r in results if k in r) / sum(k in r for r in results)
                for k in keys}


@HOOKS.register_module()
class ExportStudentHook(Hook):
    """Export the student next to each checkpoint and after training (main process only)."""

    priority = "VERY_LOW"

    def before_save_checkpoint(self, runner: Any, checkpoint: dict) -> None:
        self._export(runner)

    def after_train(self, runner: Any) -> None:
        self._export(runner)

    def _export(self, runner: Any) -> None:
        from mmengine.dist import is_main_process

        from pe_dense.engine import fsdp

        model = runner.model
        if isinstance(model, fsdp.FullyShardedModel):  # gather the shards (every rank calls)
            def build() -> torch.nn.Module:
                with MODELS.switch_scope_and_registry(runner.cfg.get("default_scope")) as reg:
                    return reg.build(runner.cfg.model)

            model = fsdp.plain_model(model, build)
        if is_main_process():
            path = export_run(model, runner.work_dir)
            runner.logger.info(f"student checkpoint: {path} (create_backbone("
                               f"'{getattr(model, 'module', model).variant}', "
                               f"weights='{path}'))")


def lamb(params: Any, **kwargs: Any) -> torch.optim.Optimizer:
    """timm's LAMB (``betas``, ``weight_decay``, ``max_grad_norm``, ...), built on demand."""
    from pe_dense.backbone.timm_adapter import lamb_optimizer

    return lamb_optimizer(params, **kwargs)


OPTIMIZERS.register_module(name="Lamb", module=lamb)
