"""``Predictor``: a config + checkpoint -> predictions on images, for any task model.

The model comes from ``cfg.model``, the preprocessing from ``cfg.test_dataloader`` (its
dataset ``pipeline``, fed a ``{"image", "ori_size", "image_id"}`` dict, and its ``collate_fn``),
so inference matches evaluation. Drawing dispatches on the model's ``task`` attribute to
``pe_dense.viz.drawing.draw_<...>`` (see :data:`DRAWERS`).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pe_dense.engine import registry
from pe_dense.engine.runner import load_config, load_model_weights, read_training_checkpoint

__all__ = ["Predictor", "DRAWERS", "detections_to_json", "read_image"]

log = logging.getLogger(__name__)


def read_image(source: str | os.PathLike | np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 RGB from a path or an array (grey/RGBA converted)."""
    if isinstance(source, np.ndarray):
        if source.ndim != 3 or source.shape[2] != 3 or source.dtype != np.uint8:
            raise ValueError(f"expected an (H, W, 3) uint8 RGB array, got {source.shape} "
                             f"{source.dtype}")
        return source
    from PIL import Image

    path = Path(source)
    if not path.is_file():
        raise FileNotFoundError(f"image {path} does not exist")
    try:
        with Image.open(path) as im:
            return np.array(im.convert("RGB"))
    except OSError as exc:
        raise ValueError(f"cannot read {path} as an image ({exc})") from exc


def _draw_detection(image: np.ndarray, pred: dict[str, Any], class_names: Sequence[str] | None,
                    score_threshold: float) -> np.ndarray:
    from pe_dense.viz.drawing import draw_detections

    masks = pred.get("masks")
    return draw_detections(image, _np(pred["boxes"]), _np(pred["labels"]), _np(pred["scores"]),
                           None if masks is None else _np(masks), class_names,
                           score_threshold=score_threshold)


def _draw_segmentation(image: np.ndarray, pred: Any, class_names: Sequence[str] | None,
                       score_threshold: float) -> np.ndarray:
    from pe_dense.viz.drawing import draw_segmentation

    labels = pred.get("pred", pred.get("labels")) if isinstance(pred, dict) else pred
    return draw_segmentation(image, _np(labels), class_names)


def _draw_depth(image: np.ndarray, pred: Any, class_names: Sequence[str] | None,
                score_threshold: float) -> np.ndarray:
    from pe_dense.viz.drawing import draw_depth

    depth = pred.get("pred_depth", pred.get("depth")) if isinstance(pred, dict) else pred
    return draw_depth(image, _np(depth))


# task -> drawer(image, prediction, class_names, score_threshold) -> (H, W', 3) uint8
DRAWERS: dict[str, Callable[..., np.ndarray]] = {
    "detection": _draw_detection,
    "segmentation": _draw_segmentation,
    "depth": _draw_depth,
}


def _np(x: Any) -> np.ndarray:
    return x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)


def detections_to_json(pred: dict[str, Any], class_names: Sequence[str] | None = None,
                       score_threshold: float = 0.0) -> list[dict[str, Any]]:
    """Detection prediction -> JSON-able instances: ``bbox`` xyxy, ``score``, ``label``,
    ``category`` and (with masks) an RLE ``segmentation`` of the original image size."""
    from pycocotools import mask as mask_utils

    scores = _np(pred["scores"])
    keep = np.nonzero(scores >= score_threshold)[0]
    masks = _np(pred["masks"])[keep].astype(np.uint8) if pred.get("masks") is not None else None
    out = []
    for j, i in enumerate(keep):
        label = int(_np(pred["labels"])[i])
        entry = {"bbox": [round(float(v), 2) for v in _np(pred["boxes"])[i]],
                 "score": round(float(scores[i]), 4), "label": label}
        if class_names and label < len(class_names):
            entry["category"] = class_names[label]
        if masks is not None:
            rle = mask_utils.encode(np.asfortranarray(masks[j]))
            entry["segmentation"] = {"size": rle["size"], "counts": rle["counts"].decode()}
        out.append(entry)
    return out


class Predictor:
    """``Predictor(config, checkpoint)(image) -> prediction`` (the model's ``predict`` output).

    ``config``: path or Config; ``checkpoint``: a ``pe-dense train`` checkpoint (None keeps the
    config's weights, e.g. random or ``model.backbone.weights``); ``device``: default CUDA if
    available; ``class_names``: default from the checkpoint's dataset metadata.
    """

    def __init__(self, config: Any, checkpoint: str | os.PathLike | None = None,
                 device: str | None = None, cfg_options: Any = None,
                 class_names: Sequence[str] | None = None) -> None:
        cfg = load_config(config, cfg_options)
        with registry.MODELS.switch_scope_and_registry(cfg.default_scope) as models:
            self.model = models.build(cfg.model)
        meta: dict[str, Any] = {}
        if checkpoint is not None:
            _, meta = read_training_checkpoint(checkpoint, with_meta=True)
            load_model_weights(self.model, checkpoint)
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.model.to(self.device).eval()
        self.task = getattr(self.model, "task", None)
        names = class_names or (meta.get("dataset_meta") or {}).get("classes")
        self.class_names = list(names) if names else None
        loader = cfg.get("test_dataloader") or {}
        dataset = loader.get("dataset") or {}
        from pe_dense.data.det_transforms import Compose

        self.pipeline = Compose(list(dataset.get("pipeline") or [{"type": "PackDetInputs"}]))
        collate = dict(loader.get("collate_fn") or {"type": "pe_dense.detection_collate"})
        fn = registry.FUNCTIONS.get(collate.pop("type"))
        if fn is None:
            raise ValueError(f"unknown collate_fn {loader.get('collate_fn')!r}")
        self.collate = partial(fn, **collate)

    @torch.no_grad()
    def predict(self, images: Sequence[str | os.PathLike | np.ndarray]) -> list[Any]:
        """One prediction per image (paths or (H, W, 3) uint8 RGB arrays), in original pixels."""
        if hasattr(self.model, "predict_images"):  # segmentation / depth: arrays in and out
            return self.model.predict_images([read_image(s) for s in images])
        items = []
        for i, source in enumerate(images):
            image = read_image(source)
            items.append(self.pipeline({"image": image, "ori_size": image.shape[:2],
                                        "image_id": i}))
        return self.model.test_step(self.collate(items))

    def __call__(self, image: str | os.PathLike | np.ndarray) -> Any:
        return self.predict([image])[0]

    def draw(self, image: str | os.PathLike | np.ndarray, prediction: Any,
             score_threshold: float = 0.5) -> np.ndarray:
        """The prediction drawn on the image by the model's task drawer (or its own
        ``draw_prediction(image, prediction, class_names)``)."""
        image = read_image(image)
        if hasattr(self.model, "draw_prediction"):
            return self.model.draw_prediction(image, prediction, self.class_names)
        if self.task not in DRAWERS:
            raise ValueError(f"no drawer for model task {self.task!r}; known {sorted(DRAWERS)} "
                             "(set a task attribute or define draw_prediction on the model)")
        return DRAWERS[self.task](image, prediction, self.class_names, score_threshold)
