"""The detection task (Mask R-CNN) as the layers above it see it (see
:mod:`pe_dense.tasks.description`). Nothing heavy is imported until a callable runs."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from pe_dense.tasks.description import TaskDescription

if TYPE_CHECKING:  # the module imports neither at run time: listing tasks stays cheap
    import numpy as np
    from torch import nn

__all__ = ["DESCRIPTION"]


def _np(x: Any) -> np.ndarray | None:
    import numpy as np

    if x is None:
        return None
    return x.detach().cpu().numpy() if hasattr(x, "detach") else np.asarray(x)


def draw(image: np.ndarray, pred: dict[str, Any], class_names: Sequence[str] | None,
         score_threshold: float) -> np.ndarray:
    """Masks, boxes and ``name score`` tags of the detections scoring >= ``score_threshold``."""
    import numpy as np

    from pe_dense.viz.overlays import draw_detections

    scores = _np(pred["scores"])
    masks = _np(pred.get("masks"))
    if pred.get("mask_crops") is not None:  # sliced inference: paste the drawn ones only
        from pe_dense.tasks.detection.sliced import expand_masks

        keep = np.nonzero(scores >= score_threshold)[0]
        pasted = expand_masks([pred["mask_crops"][i] for i in keep], image.shape[:2])
        scores, masks = scores[keep], pasted
        pred = {k: _np(pred[k])[keep] for k in ("boxes", "labels")}
    return draw_detections(image, _np(pred["boxes"]), _np(pred["labels"]), scores, masks,
                           class_names, score_threshold=score_threshold)


def writer(out: Any, class_names: Sequence[str] | None = None, **options: Any) -> Any:
    from pe_dense.tasks.detection.results import CocoResultsWriter

    return CocoResultsWriter(out, class_names, **options)


def graph(model: nn.Module) -> tuple[nn.Module, list[str]]:
    names = sorted(model.pyramid.output_shape(), key=lambda k: int(k[1:]))
    from pe_dense.tasks.graphs import EncoderGraph

    return EncoderGraph(model, names).eval(), names


def bind(model: nn.Module, session: Any) -> nn.Module:
    from pe_dense.runtime.adapters import bind_encoder

    return bind_encoder(model, session)


def random_model(backbone: nn.Module, variant: str) -> nn.Module:
    """Mask R-CNN with 80 random-weight classes and a 128-channel pyramid on ``backbone``."""
    from pe_dense.tasks.detection.model import MaskRCNN

    return MaskRCNN(backbone=backbone, num_classes=80,
                    pyramid={"type": "SimpleFeaturePyramid", "out_channels": 128},
                    rpn={"pre_nms_top_n": {"training": 2000, "testing": 300},
                         "post_nms_top_n": {"training": 1000, "testing": 100}},
                    roi={"score_thresh": 0.0, "detections_per_img": 20})


DESCRIPTION = TaskDescription(
    name="detection", mode="det", engine_modules=("pe_dense.engine.tasks.detection",),
    draw=draw, writer=writer, graph=graph, bind=bind, random_model=random_model,
    demo_mode="pe_dense.demo.tasks:DetMode",
    result_files="results.json (COCO results: bbox xywh, score, RLE segmentation) and, without "
                 "a COCO annotation file, images.json (ids -> paths)",
    pipeline_tag="object-detection")
