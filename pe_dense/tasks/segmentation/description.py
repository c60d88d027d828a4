"""The semantic segmentation task as the layers above it see it (see
:mod:`pe_dense.tasks.description`). Nothing heavy is imported until a callable runs."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from pe_dense.tasks.description import TaskDescription

if TYPE_CHECKING:  # the module imports neither at run time: listing tasks stays cheap
    import numpy as np
    from torch import nn

__all__ = ["DESCRIPTION"]


def draw(image: np.ndarray, pred: Any, class_names: Sequence[str] | None,
         score_threshold: float) -> np.ndarray:
    """Label overlay with a legend of the classes present."""
    from pe_dense.tasks.segmentation.results import _labels
    from pe_dense.viz.overlays import draw_segmentation

    return draw_segmentation(image, _labels(pred), class_names)


def writer(out: Any, class_names: Sequence[str] | None = None, **options: Any) -> Any:
    from pe_dense.tasks.segmentation.results import LabelMapWriter

    return LabelMapWriter(out, class_names, **options)


def graph(model: nn.Module) -> tuple[nn.Module, list[str]]:
    from pe_dense.tasks.graphs import DenseGraph

    return DenseGraph(model).eval(), ["logits"]


def bind(model: nn.Module, session: Any) -> nn.Module:
    from pe_dense.runtime.adapters import bind_dense

    return bind_dense(model, session)


def random_model(backbone: nn.Module, variant: str) -> nn.Module:
    """A linear head over the CamVid classes on ``backbone``, random weights."""
    from pe_dense.data.segmentation import CAMVID_CLASSES
    from pe_dense.tasks.segmentation.model import Segmentor

    return Segmentor(backbone=backbone, head={"type": "LinearHead"},
                     num_classes=len(CAMVID_CLASSES), class_names=CAMVID_CLASSES)


DESCRIPTION = TaskDescription(
    name="segmentation", mode="seg",
    engine_modules=("pe_dense.engine.tasks.segmentation", "pe_dense.engine.tasks.open_vocab"),
    draw=draw, writer=writer, graph=graph, bind=bind, random_model=random_model,
    demo_mode="pe_dense.demo.tasks:SegMode",
    result_files="pred/<name>.png label maps (pixel = class index, palette PNG); "
                 "--save-logits: pred/<name>.npz (logits (K, H, W) float32)",
    pipeline_tag="image-segmentation")
