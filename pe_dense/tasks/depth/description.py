"""The monocular depth task as the layers above it see it (see
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
    """Image, colour-mapped depth and a colour bar in metres."""
    from pe_dense.tasks.depth.results import _depth
    from pe_dense.viz.overlays import draw_depth

    return draw_depth(image, _depth(pred))


def writer(out: Any, class_names: Sequence[str] | None = None, **options: Any) -> Any:
    from pe_dense.tasks.depth.results import DepthPngWriter

    return DepthPngWriter(out, class_names, **options)


def graph(model: nn.Module) -> tuple[nn.Module, list[str]]:
    from pe_dense.tasks.graphs import DenseGraph

    return DenseGraph(model).eval(), ["depth"]


def bind(model: nn.Module, session: Any) -> nn.Module:
    from pe_dense.runtime.adapters import bind_dense

    return bind_dense(model, session)


def random_model(backbone: nn.Module, variant: str) -> nn.Module:
    """A DPT head (the widths of ``variant``) on ``backbone``, random weights."""
    from pe_dense.tasks.depth.model import DepthEstimator

    return DepthEstimator(backbone=backbone, head={"type": "DPTHead"}, variant=variant)


DESCRIPTION = TaskDescription(
    name="depth", mode="depth", engine_modules=("pe_dense.engine.tasks.depth",),
    draw=draw, writer=writer, graph=graph, bind=bind, random_model=random_model,
    demo_mode="pe_dense.demo.tasks:DepthMode",
    result_files="pred/<name>.png 16-bit depth in millimetres (NYU / KITTI convention); "
                 "--save-raw: pred/<name>.npy (float32 metres)",
    pipeline_tag="depth-estimation")
