"""``Predictor``: a config + checkpoint -> predictions on images, for any task model.

The model comes from ``cfg.model``, the preprocessing from ``cfg.test_dataloader`` (its
dataset ``pipeline``, fed a ``{"image", "ori_size", "image_id"}`` dict, and its ``collate_fn``),
so inference matches evaluation. Drawing dispatches on the model's ``task`` attribute to
``pe_dense.viz.overlays.draw_<...>`` (see :data:`DRAWERS`). The model itself comes from
:func:`pe_dense.engine.build.load_model`, the loader the demo uses too.
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

from pe_dense.data.images import check_rgb, read_rgb
from pe_dense.engine import registry
from pe_dense.engine.build import load_model
from pe_dense.viz.banner import mark_random, weights_record

__all__ = ["Predictor", "DRAWERS", "detections_to_json", "predict_file", "write_records"]

log = logging.getLogger(__name__)


def _rgb(source: str | os.PathLike | np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 RGB from a path (:func:`read_rgb`) or a checked array."""
    return check_rgb(source) if isinstance(source, np.ndarray) else read_rgb(source)


def _draw_detection(image: np.ndarray, pred: dict[str, Any], class_names: Sequence[str] | None,
                    score_threshold: float) -> np.ndarray:
    from pe_dense.viz.overlays import draw_detections

    masks = pred.get("masks")
    return draw_detections(image, _np(pred["boxes"]), _np(pred["labels"]), _np(pred["scores"]),
                           None if masks is None else _np(masks), class_names,
                           score_threshold=score_threshold)


def _draw_segmentation(image: np.ndarray, pred: Any, class_names: Sequence[str] | None,
                       score_threshold: float) -> np.ndarray:
    from pe_dense.viz.overlays import draw_segmentation

    labels = pred.get("pred", pred.get("labels")) if isinstance(pred, dict) else pred
    return draw_segmentation(image, _np(labels), class_names)


def _draw_depth(image: np.ndarray, pred: Any, class_names: Sequence[str] | None,
                score_threshold: float) -> np.ndarray:
    from pe_dense.viz.overlays import draw_depth

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


def _test_pipeline(cfg: Any) -> tuple[Callable, Callable]:
    """The config's test ``pipeline`` (a Compose of its transforms) and ``collate_fn``."""
    from pe_dense.data.det_transforms import Compose

    loader = cfg.get("test_dataloader") or {}
    dataset = loader.get("dataset") or {}
    pipeline = Compose(list(dataset.get("pipeline") or [{"type": "PackDetInputs"}]))
    collate = dict(loader.get("collate_fn") or {"type": "pe_dense.detection_collate"})
    fn = registry.FUNCTIONS.get(collate.pop("type"))
    if fn is None:
        raise ValueError(f"unknown collate_fn {loader.get('collate_fn')!r}")
    return pipeline, partial(fn, **collate)


class Predictor:
    """``Predictor(config, checkpoint)(image) -> prediction`` (the model's ``predict`` output).

    ``config``: path or Config; ``checkpoint``: a ``pe-dense train`` checkpoint (None keeps the
    config's weights, e.g. random or ``model.backbone.weights``: ``random_weights`` is then
    True and :meth:`draw` marks its pictures); ``device``: default CUDA if available;
    ``class_names``: default from the checkpoint's dataset metadata.
    """

    def __init__(self, config: Any, checkpoint: str | os.PathLike | None = None,
                 device: str | None = None, cfg_options: Any = None,
                 class_names: Sequence[str] | None = None) -> None:
        loaded = load_model(config, checkpoint, device, cfg_options, class_names)
        self.model, self.cfg = loaded.model, loaded.cfg
        # no trained checkpoint: the heads (and the backbone unless the config loads weights)
        # are random, and every drawing says so
        self.weights = weights_record(checkpoint)
        self.random_weights = checkpoint is None
        self.device = next(self.model.parameters()).device
        self.task = loaded.task
        self.class_names = list(loaded.class_names) if loaded.class_names else None
        self._test_pipeline: tuple[Callable, Callable] | None = None

    def _pipeline_and_collate(self) -> tuple[Callable, Callable]:
        """The config's test pipeline and collate (built on first use)."""
        if self._test_pipeline is None:
            self._test_pipeline = _test_pipeline(self.cfg)
        return self._test_pipeline

    @torch.no_grad()
    def predict(self, images: Sequence[str | os.PathLike | np.ndarray]) -> list[Any]:
        """One prediction per image (paths or (H, W, 3) uint8 RGB arrays), in original pixels."""
        if hasattr(self.model, "predict_images"):  # the task model's own stages, arrays in and out
            return self.model.predict_images([_rgb(s) for s in images])
        pipeline, collate = self._pipeline_and_collate()
        items = []
        for i, source in enumerate(images):
            image = _rgb(source)
            items.append(pipeline({"image": image, "ori_size": image.shape[:2],
                                        "image_id": i}))
        return self.model.test_step(collate(items))

    def __call__(self, image: str | os.PathLike | np.ndarray) -> Any:
        return self.predict([image])[0]

    def draw(self, image: str | os.PathLike | np.ndarray, prediction: Any,
             score_threshold: float = 0.5) -> np.ndarray:
        """The prediction drawn on the image by the model's task drawer (or its own
        ``draw_prediction(image, prediction, class_names)``)."""
        image = _rgb(image)
        if hasattr(self.model, "draw_prediction"):
            drawn = self.model.draw_prediction(image, prediction, self.class_names)
        elif self.task in DRAWERS:
            drawn = DRAWERS[self.task](image, prediction, self.class_names, score_threshold)
        else:
            raise ValueError(f"no drawer for model task {self.task!r}; known {sorted(DRAWERS)} "
                             "(set a task attribute or define draw_prediction on the model)")
        return mark_random(drawn, self.random_weights)


def predict_file(predictor: Predictor, path: str | os.PathLike, out: str | os.PathLike,
                 score_threshold: float = 0.5) -> dict[str, Any]:
    """Predict one image file, write the drawing to ``out/<stem>.png``; returns its record for
    predictions.json (``image``, ``drawn``, ``weights``: the checkpoint, null when random, and
    for detection ``instances``)."""
    from PIL import Image

    from pe_dense.utils.io import atomic_path

    image = read_rgb(path)
    pred = predictor(image)
    drawn = predictor.draw(image, pred, score_threshold=score_threshold)
    target = Path(out) / f"{Path(path).stem}.png"
    with atomic_path(target) as tmp:
        Image.fromarray(drawn).save(tmp)
    record: dict[str, Any] = {"image": str(path), "drawn": str(target),
                              "weights": predictor.weights}
    if predictor.task == "detection":
        record["instances"] = detections_to_json(pred, predictor.class_names, score_threshold)
    return record


def write_records(out: str | os.PathLike, records: list[dict[str, Any]]) -> Path:
    """``out/predictions.json`` with the records of :func:`predict_file`."""
    import json

    from pe_dense.utils.io import atomic_write_text

    return atomic_write_text(Path(out) / "predictions.json", json.dumps(records, indent=1))
