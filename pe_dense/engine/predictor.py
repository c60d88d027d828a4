"""``Predictor``: a config + checkpoint -> predictions on images, for any task model.

The model comes from ``cfg.model``; a model with ``predict_images`` (every pe_dense task model)
prepares images itself as the config's test settings say, otherwise the preprocessing comes from
``cfg.test_dataloader`` (its dataset ``pipeline``, fed a ``{"image", "ori_size", "image_id"}``
dict, and its ``collate_fn``), so inference matches evaluation. Drawing and result files come
from the model's task description (:func:`pe_dense.tasks.description.task_of`). The model itself
comes from :func:`pe_dense.engine.build.load_model`, the loader the demo uses too.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

import numpy as np
import torch

from pe_dense.data.images import check_rgb, read_rgb
from pe_dense.engine import registry
from pe_dense.engine.build import load_model
from pe_dense.tasks.description import task_of
from pe_dense.viz.banner import mark_random, weights_record

__all__ = ["Predictor"]

log = logging.getLogger(__name__)


def _rgb(source: str | os.PathLike | np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 RGB from a path (:func:`read_rgb`) or a checked array."""
    return check_rgb(source) if isinstance(source, np.ndarray) else read_rgb(source)


def _np(x: Any) -> np.ndarray:
    return x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)


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
        self.description = task_of(self.model)
        self.class_names = list(loaded.class_names) if loaded.class_names else None
        self._test_pipeline: tuple[Callable, Callable] | None = None

    @classmethod
    def from_pretrained(cls, repo_or_dir: str | os.PathLike, device: str | None = None,
                        revision: str | None = None, **kwargs: Any) -> Predictor:
        """A Predictor for a model repository: ``hf://owner/repo[@revision]``, ``owner/repo``
        or a local folder holding ``config.py`` and ``model.safetensors`` (written by
        :func:`pe_dense.engine.hub.save_pretrained` or ``pe-dense push``). Hub repositories
        are downloaded and cached; offline the cached copy is used, else the error says how
        to use a local folder (:mod:`pe_dense.utils.hub`). ``kwargs``: as for the
        constructor (``cfg_options``, ``class_names``)."""
        from pe_dense.engine.hub import resolve_pretrained

        files = resolve_pretrained(repo_or_dir, revision)
        kwargs.setdefault("class_names", files.class_names)
        predictor = cls(files.config, files.weights, device=device, **kwargs)
        predictor.random_weights = files.random_weights  # a repository of untrained weights
        return predictor

    def _pipeline_and_collate(self) -> tuple[Callable, Callable]:
        """The config's test pipeline and collate (built on first use)."""
        if self._test_pipeline is None:
            self._test_pipeline = _test_pipeline(self.cfg)
        return self._test_pipeline

    @property
    def dense(self) -> bool:
        """Whether the model is a dense one (segmentation, depth: per-pixel raw outputs)."""
        return hasattr(self.model, "outputs_per_image") and hasattr(self.model, "image_result")

    @torch.no_grad()
    def predict(self, images: Sequence[str | os.PathLike | np.ndarray],
                raw: bool = False) -> list[Any]:
        """One prediction per image (paths or (H, W, 3) uint8 RGB arrays), in original pixels:
        detection dicts; for dense models the (H, W) label map / depth array, or with ``raw``
        the result dict with the raw outputs (C, H, W) as ``"logits"`` too."""
        if self.dense:
            results = self._predict_dense([_rgb(s) for s in images], raw)
            return results if raw else [self._dense_output(r) for r in results]
        if hasattr(self.model, "predict_images"):  # the task model's own stages, arrays in and out
            return self.model.predict_images([_rgb(s) for s in images])
        pipeline, collate = self._pipeline_and_collate()
        items = []
        for i, source in enumerate(images):
            image = _rgb(source)
            items.append(pipeline({"image": image, "ori_size": image.shape[:2],
                                        "image_id": i}))
        return self.model.test_step(collate(items))

    def _dense_output(self, result: dict[str, Any]) -> np.ndarray:
        return result[self.model.prediction_key].cpu().numpy()

    def _predict_dense(self, images: list[np.ndarray], raw: bool) -> list[dict[str, Any]]:
        """A dense model on a batch of images (padded once to its size divisor; each image's
        outputs cropped to its own size)."""
        from pe_dense.data.collate import pad_images
        from pe_dense.data.images import to_tensor

        tensors = [to_tensor(image) for image in images]
        sizes = [(int(t.shape[-2]), int(t.shape[-1])) for t in tensors]
        batch = pad_images(tensors, size_divisor=self.model.size_divisor).to(self.device)
        results = []
        for out, size in zip(self.model.outputs_per_image(batch, sizes), sizes, strict=True):
            result = self.model.image_result(out, {}, size)
            if raw:
                result["logits"] = out[0].float().cpu()
            results.append(result)
        return results

    @torch.no_grad()
    def predict_sliced(self, image: np.ndarray, size: int, overlap: float = 0.2,
                       raw: bool = False) -> Any:
        """One large (H, W, 3) uint8 image in ``size`` x ``size`` pieces: detection by slices
        plus the whole image, merged (:func:`pe_dense.tasks.detection.sliced.sliced_predict`);
        dense models by a sliding window averaging overlapping outputs
        (:func:`pe_dense.tasks.common.slide_predict`)."""
        image = check_rgb(image)
        if self.dense:
            from pe_dense.tasks.common import slide_predict

            out = slide_predict(self.model, image, size, overlap)
            result = self.model.image_result(out, {}, image.shape[:2])
            if not raw:
                return self._dense_output(result)
            result["logits"] = out[0].float().cpu()
            return result
        from pe_dense.tasks.detection.sliced import sliced_predict

        # the whole-image pass at the detector's own test size: its masks are never pasted
        # at full resolution (N x H x W floats on a large image)
        resize = getattr(getattr(self.model, "inputs", None), "resize", 0) or 0
        return sliced_predict(self.predict, image, size, overlap, mask_format="crops",
                              whole_size=int(resize))

    def __call__(self, image: str | os.PathLike | np.ndarray) -> Any:
        return self.predict([image])[0]

    def draw(self, image: str | os.PathLike | np.ndarray, prediction: Any,
             score_threshold: float = 0.5) -> np.ndarray:
        """The prediction drawn on the image by the model's task drawer (or its own
        ``draw_prediction(image, prediction, class_names)``)."""
        image = _rgb(image)
        if hasattr(self.model, "draw_prediction"):
            drawn = self.model.draw_prediction(image, prediction, self.class_names)
        elif self.description.draw is not None:
            drawn = self.description.draw(image, prediction, self.class_names, score_threshold)
        else:
            raise ValueError(f"task {self.task!r} has no drawer: set draw in its "
                             "TaskDescription or define draw_prediction on the model")
        return mark_random(drawn, self.random_weights)
