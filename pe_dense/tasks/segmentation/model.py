"""Semantic segmentation on PE: backbone (+ optional pyramid) + head, a plain ``nn.Module``.

:class:`Segmentor` reads the backbone through ``forward_intermediates`` (probe heads: the maps
of ``layers`` concatenated; UPerNet: the levels p2..p5 of a :mod:`pe_dense.necks.pyramid`
neck), upsamples the logits to the image and trains with pixel cross-entropy.

Stages (the demo, the Predictor and export call these): ``preprocess`` (uint8 -> [-1, 1]),
``encode`` (-> list of maps), ``decode`` (-> logits at the image size), ``forward`` (all three),
``loss``, ``predict`` and ``predict_images`` (-> (H, W) int64 class maps). Batches come from
:func:`pe_dense.data.segmentation.seg_collate`, padded once to ``size_divisor``. Inference
is "whole" (the padded batch in one pass) or "slide" (overlapping crops, logits averaged),
after an optional keep-ratio resize to ``test_scale``; predictions come back at each image's
size. The mmengine model, dataset, collate and metric registrations live in
:mod:`pe_dense.engine.tasks.segmentation`. Configs: ``configs/seg/``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from pe_dense.backbone.contract import Backbone, one_indices
from pe_dense.backbone.factory import build_backbone
from pe_dense.necks.pyramid import MultiLayerPyramid, SimpleFeaturePyramid
from pe_dense.tasks.common import (
    BackboneFeatures,
    DenseModel,
    build_module,
    check_inference_cfg,
)
from pe_dense.tasks.segmentation.heads import LinearConvHead, LinearHead, UPerHead
from pe_dense.tasks.segmentation.losses import seg_loss_and_accuracy

__all__ = ["Segmentor", "SEG_HEADS", "NECKS"]

SEG_HEADS = {"LinearHead": LinearHead, "LinearConvHead": LinearConvHead, "UPerHead": UPerHead}
NECKS = {"MultiLayerPyramid": MultiLayerPyramid, "SimpleFeaturePyramid": SimpleFeaturePyramid}


class Segmentor(DenseModel):
    """PE segmentation model.

    ``backbone``: a Backbone or ``create_backbone`` kwargs (``{"name": ..., "weights": ...}``).
    ``head``: a module or ``dict(type="LinearHead" | "LinearConvHead" | "UPerHead", ...)``;
    ``in_channels`` is filled in when absent. ``layers``: blocks read by probe heads (e.g.
    ``[-1]`` or ``[-4, -3, -2, -1]``). ``neck``: ``dict(type="MultiLayerPyramid", indices=...)``
    or ``SimpleFeaturePyramid`` for UPerNet (levels p2..p5 feed the head). ``inference``:
    ``dict(mode="whole")`` or ``dict(mode="slide", crop_size=(512, 512), stride=(341, 341))``
    (+ ``batch_size``: windows per forward; :meth:`DenseModel.slide`);
    ``test_scale``: keep-ratio resize box (long, short) before inference, e.g. (2048, 512).
    ``size_divisor`` (derived): the multiple batches must have, the patch size or the
    pyramid's coarsest stride.
    """

    task = "segmentation"

    def __init__(self, *, backbone: Backbone | Mapping[str, Any], head: nn.Module | Mapping,
                 num_classes: int, indices: Sequence[int] | None = None,
                 layers: Sequence[int] | None = None, neck: Mapping | None = None,
                 freeze_backbone: bool = True, ignore_index: int = 255,
                 class_names: Sequence[str] | None = None, inference: Mapping | None = None,
                 test_scale: tuple[int, int] | None = None) -> None:
        super().__init__()
        self.num_classes, self.ignore_index = num_classes, ignore_index
        self.class_names = tuple(class_names) if class_names else None
        self.inference_cfg = check_inference_cfg(inference)
        self.test_scale = tuple(test_scale) if test_scale else None
        if neck is not None:
            spec = {**dict(neck), "top_block": False}
            spec.setdefault("freeze_backbone", freeze_backbone)
            self.neck = build_module(spec, NECKS, "neck", backbone=build_backbone(backbone))
            self.features = None
            head_defaults = {"in_channels": [c for c, _ in self.neck.output_shape().values()]}
            self.size_divisor = max(self.neck.size_divisibility, self.neck.backbone.patch_size)
        else:
            self.neck = None
            indices = one_indices(indices, (-1,), "Segmentor", layers=layers)
            self.features = BackboneFeatures(backbone, indices, freeze_backbone)
            vit = self.features.backbone
            head_defaults = {"in_channels": vit.embed_dim * len(self.features.indices)}
            self.size_divisor = vit.patch_size
        self.head = build_module(head, SEG_HEADS, "segmentation head", num_classes=num_classes,
                                 **head_defaults)

    @property
    def backbone(self) -> Backbone:
        return self.neck.backbone if self.neck is not None else self.features.backbone

    # ---------------------------------------------------------------------------- stages

    def encode(self, x: torch.Tensor) -> list[torch.Tensor]:
        """x: (B, 3, H, W) in [-1, 1], H and W multiples of ``size_divisor`` -> the head's
        input maps, finest first: the backbone blocks ``layers`` (B, C, H/p, W/p), or the
        pyramid levels p2..p5."""
        if self.neck is not None:
            levels = self.neck(x)
            return [levels[k] for k in sorted(levels, key=lambda k: int(k[1:]))]
        return self.features(x)

    def decode(self, features: Sequence[torch.Tensor],
               image_size: tuple[int, int]) -> torch.Tensor:
        """Maps from :meth:`encode` -> logits (B, K, H, W) at ``image_size`` (bilinear)."""
        logits = self.head(list(features))
        return F.interpolate(logits, size=tuple(image_size), mode="bilinear",
                             align_corners=False)

    def loss(self, images: torch.Tensor, samples: Sequence[dict]) -> dict[str, torch.Tensor]:
        """images: (B, 3, H, W) uint8 batch; samples with ``"label"`` (H, W) padded with
        ``ignore_index`` -> ``{"loss_ce", "acc_seg"}``."""
        logits, labels = self.training_outputs(images, samples, "label",
                                               "pe_dense.data.segmentation.seg_collate")
        return seg_loss_and_accuracy(logits, labels, self.ignore_index)

    # ------------------------------------------------------------------------- inference

    @torch.no_grad()
    def inference(self, x: torch.Tensor) -> torch.Tensor:
        """One unpadded image x: (1, 3, h, w) in [-1, 1] -> logits (1, K, h, w), by
        ``inference_cfg`` after the optional ``test_scale`` resize (resized back to h x w)."""
        h, w = x.shape[-2:]
        if self.test_scale:
            long_edge, short_edge = max(self.test_scale), min(self.test_scale)
            f = min(long_edge / max(h, w), short_edge / min(h, w))
            x = F.interpolate(x, size=(int(h * f + 0.5), int(w * f + 0.5)), mode="bilinear",
                              align_corners=False)
        logits = self.slide(x) if self.slides else self.window_inference(x)
        if logits.shape[-2:] != (h, w):
            logits = F.interpolate(logits, size=(h, w), mode="bilinear", align_corners=False)
        return logits

    @property
    def per_image_inference(self) -> bool:
        return bool(self.test_scale) or self.slides

    def image_result(self, output: torch.Tensor, sample: Mapping,
                     size: tuple[int, int]) -> dict:
        """``{"pred": (h, w) int64}`` (+ ``"label"`` when the sample has a ``gt_label``,
        ``"path"``); logits resized to the ``gt_label`` if that differs. Use test pipelines
        without resizing (``test_scale`` resizes inside) so labels keep their size."""
        gt = sample.get("gt_label")
        if gt is not None and tuple(gt.shape) != tuple(output.shape[-2:]):
            output = F.interpolate(output, size=tuple(gt.shape), mode="bilinear",
                                   align_corners=False)
        result = {"pred": output[0].argmax(0).cpu()}
        if gt is not None:
            result["label"] = gt.cpu()
        if "path" in sample:
            result["path"] = sample["path"]
        return result
