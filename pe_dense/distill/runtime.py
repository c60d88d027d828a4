"""mmengine pieces of the distillation task: held-out metric, student export hook, LAMB.

``DistillMetric`` averages the model's per-image ``predict`` rows (``<teacher>_cos``,
``<teacher>_corr``). ``ExportStudentHook`` writes ``<work_dir>/student.pt`` (official layout,
``create_backbone(variant, weights=...)``) and ``distill_heads.pt`` (projections and the
model config) at every checkpoint and at the end of training. ``Lamb`` is timm's LAMB
optimiser, registered in mmengine's ``OPTIMIZERS`` so configs can say ``type="Lamb"``.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import torch
from mmengine.evaluator import BaseMetric
from mmengine.hooks import Hook
from mmengine.registry import OPTIMIZERS

from pe_dense.backbone.weights import save_checkpoint
from pe_dense.engine.registry import HOOKS, METRICS

__all__ = ["DistillMetric", "ExportStudentHook", "export_run"]

log = logging.getLogger(__name__)



def lamb(params: Any, **kwargs: Any) -> torch.optim.Optimizer:
    """timm's LAMB (``betas``, ``weight_decay``, ``max_grad_norm``, ...), built on demand."""
    try:
        from timm.optim import Lamb
    except ImportError as exc:
        raise ImportError("optimizer type='Lamb' uses timm's LAMB: pip install timm") from exc
    return Lamb(params, **kwargs)


if "Lamb" not in OPTIMIZERS.module_dict:
    OPTIMIZERS.register_module(name="Lamb", module=lamb)


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


def export_run(model: torch.nn.Module, out_dir: str | Path) -> Path:
    """Write ``student.pt`` and ``distill_heads.pt`` for a (possibly wrapped) DistillModel."""
    model = getattr(model, "module", model)
    out = Path(out_dir)
    path = out / "student.pt"
    save_checkpoint(model.student_state_dict(), path)
    plain = json.loads(json.dumps({"student": model.student_cfg, "teachers": model.teacher_cfgs},
                                  default=str))  # plain dicts: weights-only loadable
    heads = {"variant": model.variant, **plain, "crop_size": model.crop_size,
             "step": int(model.step),
             "proj": {k: v.detach().cpu() for k, v in model.proj.state_dict().items()}}
    save_checkpoint(heads, out / "distill_heads.pt")
    return path


@HOOKS.register_module()
class ExportStudentHook(Hook):
    """Export the student next to each checkpoint and after training (main process only)."""

    priority = "VERY_LOW"

    def after_save_checkpoint(self, runner: Any, checkpoint: dict) -> None:
        self._export(runner)

    def after_train(self, runner: Any) -> None:
        self._export(runner)

    def _export(self, runner: Any) -> None:
        from mmengine.dist import is_main_process

        if is_main_process():
            path = export_run(runner.model, runner.work_dir)
            runner.logger.info(f"student checkpoint: {path} (create_backbone("
                               f"'{getattr(runner.model, 'module', runner.model).variant}', "
                               f"weights='{path}'))")

