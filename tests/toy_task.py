"""A task from outside pe_dense, for tests/test_task_plugin.py: a per-pixel "brightness" map.

One module plus one registration: the model (plain PyTorch), its engine registration (so an
mmengine config builds it; configs import this module with ``custom_imports``) and its
:class:`~pe_dense.tasks.description.TaskDescription`. Nothing else in pe_dense is edited.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from pe_dense.backbone.factory import build_backbone
from pe_dense.engine.adapters import register_task as register_engine_model
from pe_dense.runtime.adapters import bind_dense
from pe_dense.tasks.common import DenseModel
from pe_dense.tasks.description import TaskDescription, register_task
from pe_dense.tasks.graphs import DenseGraph
from pe_dense.tasks.results import PredictItem, ResultWriter, save_npy


class ToyBrightness(DenseModel):
    """backbone -> 1x1 conv -> (B, 1, H, W) map, upsampled bilinearly."""

    task = "toy"

    def __init__(self, backbone: Any) -> None:
        super().__init__()
        self.backbone = build_backbone(backbone)
        self.size_divisor = self.backbone.patch_size
        self.head = nn.Conv2d(self.backbone.embed_dim, 1, 1)

    def encode(self, x: torch.Tensor) -> list[torch.Tensor]:
        return self.backbone.forward_intermediates(x, [-1])

    def decode(self, features: list[torch.Tensor], image_size: tuple[int, int]) -> torch.Tensor:
        return F.interpolate(self.head(features[0]), size=tuple(image_size), mode="bilinear",
                             align_corners=False)

    def loss(self, images: torch.Tensor, samples: Any) -> dict[str, torch.Tensor]:
        return {"loss": self(images).mean()}

    def image_result(self, output: torch.Tensor, sample: Any, size: tuple[int, int]) -> dict:
        return {"pred": output[0, 0].cpu()}


class ToyWriter(ResultWriter):
    suffixes = (".npy",)

    def write(self, item: PredictItem, prediction: Any) -> dict[str, Any]:
        value = np.asarray(prediction, np.float32)
        save_npy(self.path(item, ".npy"), value)
        return {"mean": float(value.mean())}


def _draw(image: np.ndarray, pred: Any, class_names: Any, score_threshold: float) -> np.ndarray:
    value = np.asarray(pred, np.float32)
    grey = (255 * (value - value.min()) / (np.ptp(value) + 1e-6)).astype(np.uint8)
    return np.concatenate([image, np.repeat(grey[..., None], 3, axis=2)], axis=1)


DESCRIPTION = register_task(TaskDescription(
    name="toy", mode="toy", engine_modules=(__name__,), draw=_draw,
    writer=lambda out, class_names=None, **options: ToyWriter(out, class_names, **options),
    graph=lambda model: (DenseGraph(model).eval(), ["brightness"]), bind=bind_dense,
    random_model=lambda backbone, variant: ToyBrightness(backbone=backbone),
    result_files="pred/<name>.npy brightness maps"), replace=True)
EngineToyBrightness = register_engine_model(__name__, ToyBrightness)

RUNTIME = Path(__file__).resolve().parents[1] / "configs/_base_/default_runtime.py"
CONFIG = f'''_base_ = ["{RUNTIME}"]
custom_imports = dict(imports=["toy_task"], allow_failed_imports=False)
model = dict(type="ToyBrightness", backbone=dict(name="PE-Test"))
'''
