"""Mask R-CNN on a PE feature pyramid: a plain ``torch.nn.Module`` (no mmengine).

backbone -> :class:`~pe_dense.necks.pyramid.SimpleFeaturePyramid` (or the multi-layer one) ->
torchvision's anchors, RPN and RoI heads with ViTDet's head choices
(:mod:`pe_dense.tasks.detection.heads`) and detectron2's losses, aligned multi-scale RoIAlign,
mask targets and mask pasting (:mod:`pe_dense.tasks.detection.roi`). Batches are (B, 3, H, W)
uint8 RGB, zero-padded once by :func:`pe_dense.data.collate.detection_collate` to a multiple of
:attr:`MaskRCNN.size_divisibility` (or a square), with per-image sample dicts. Stages:
:meth:`~MaskRCNN.preprocess` (normalise), :meth:`~MaskRCNN.encode` (pyramid p2..p6),
:meth:`~MaskRCNN.decode` (detections in input pixels), :meth:`~MaskRCNN.postprocess` (original
pixels). The mmengine model (registry type ``"MaskRCNN"``) is made by
:mod:`pe_dense.engine.tasks.detection`.

The per-variant ViTDet backbone settings at 1024 px are
:data:`pe_dense.backbone.variants.VITDET_PRESETS` (``vitdet_backbone(name)``).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.image_list import ImageList

from pe_dense.data.collate import detection_collate
from pe_dense.data.det_transforms import PackDetInputs, ResizeLongestSide
from pe_dense.data.images import check_rgb
from pe_dense.necks.pyramid import MultiLayerPyramid, SimpleFeaturePyramid
from pe_dense.tasks.detection import heads
from pe_dense.tasks.detection.roi import (
    LevelRoIAlign,
    ViTDetRoIHeads,
    ViTDetRPN,
    init_like_detectron2,
    paste_masks,
)

__all__ = ["MaskRCNN", "DetInputs"]

_PYRAMIDS = {"SimpleFeaturePyramid": SimpleFeaturePyramid, "MultiLayerPyramid": MultiLayerPyramid}


def _build_pyramid(backbone: Any, pyramid: Mapping[str, Any]) -> torch.nn.Module:
    cfg = dict(pyramid)
    kind = cfg.pop("type", "SimpleFeaturePyramid")
    if kind not in _PYRAMIDS:
        raise ValueError(f"pyramid type {kind!r} is not one of {sorted(_PYRAMIDS)}")
    return _PYRAMIDS[kind](backbone, **cfg)


@dataclass
class DetInputs:
    """How :meth:`MaskRCNN.predict_images` turns (H, W, 3) images into a batch; it mirrors the
    config's test pipeline and collate (:func:`pe_dense.engine.tasks.detection.configure_inputs`
    copies them from a config). ``resize``: ``ResizeLongestSide`` size (0 keeps the size);
    ``size_divisor`` / ``square_size``: the :func:`~pe_dense.data.collate.pad_images` arguments.
    """

    resize: int = 0
    size_divisor: int = 64
    square_size: int = 0


class MaskRCNN(nn.Module):
    """Mask R-CNN (or Faster R-CNN with ``with_mask=False``) on a PE pyramid.

    ``backbone``: ``create_backbone`` kwargs (``name``, ``weights``, overrides) or a Backbone;
    ``pyramid``: pyramid kwargs with ``type`` ``"SimpleFeaturePyramid"`` (default) or
    ``"MultiLayerPyramid"``; ``num_classes``: foreground classes (labels 0..K-1 in the data);
    ``anchor_sizes``: one tuple per pyramid level (p2..p6); ``rpn`` / ``roi``: thresholds and
    sampling (torchvision argument names); ``box_head`` / ``mask_head``: see
    :mod:`pe_dense.tasks.detection.heads`.
    """

    task = "detection"

    def __init__(self, *, backbone: Any, num_classes: int,
                 pyramid: Mapping[str, Any] | None = None,
                 anchor_sizes: Sequence[Sequence[int]] = ((32,), (64,), (128,), (256,), (512,)),
                 aspect_ratios: Sequence[float] = (0.5, 1.0, 2.0),
                 rpn: Mapping[str, Any] | None = None, roi: Mapping[str, Any] | None = None,
                 box_head: Mapping[str, Any] | None = None,
                 mask_head: Mapping[str, Any] | None = None, with_mask: bool = True,
                 mask_threshold: float = 0.5) -> None:
        super().__init__()
        if num_classes < 1:
            raise ValueError(f"num_classes must be >= 1, got {num_classes}")
        self.num_classes, self.with_mask = num_classes, with_mask
        self.mask_threshold = mask_threshold
        self.pyramid = _build_pyramid(backbone, pyramid or {})
        shape = self.pyramid.output_shape()
        if len(anchor_sizes) != len(shape):
            raise ValueError(f"anchor_sizes has {len(anchor_sizes)} entries but the pyramid has "
                             f"{len(shape)} levels {list(shape)}: give one tuple per level")
        channels = next(iter(shape.values()))[0]
        self.rpn = self._build_rpn(channels, anchor_sizes, aspect_ratios, dict(rpn or {}))
        self.roi_heads = self._build_roi_heads(channels, shape, dict(roi or {}),
                                               dict(box_head or {}), dict(mask_head or {}))
        # The one record of how predict_images pads (and resizes) images.
        self.inputs = DetInputs(size_divisor=self.size_divisibility,
                                square_size=self.pyramid.square_pad)

    @property
    def backbone(self) -> torch.nn.Module:
        return self.pyramid.backbone

    @property
    def size_divisibility(self) -> int:
        """Batch height and width must be multiples of this (the pyramid's coarsest stride)."""
        return self.pyramid.size_divisibility

    @property
    def size_divisor(self) -> int:
        """The ``pad_images`` size divisor of this model's batches (from :attr:`inputs`), the
        same attribute segmentation and depth models have."""
        return self.inputs.size_divisor

    @property
    def square_size(self) -> int:
        """The ``pad_images`` square size of this model's batches (0: none)."""
        return self.inputs.square_size

    def _build_rpn(self, channels: int, sizes: Sequence[Sequence[int]],
                   ratios: Sequence[float], cfg: dict[str, Any]) -> ViTDetRPN:
        anchors = AnchorGenerator(tuple(tuple(s) for s in sizes),
                                  (tuple(ratios),) * len(sizes))
        head = heads.build_rpn_head(channels, anchors.num_anchors_per_location()[0],
                                    conv_depth=cfg.pop("conv_depth", 2))
        args = dict(fg_iou_thresh=0.7, bg_iou_thresh=0.3, batch_size_per_image=256,
                    positive_fraction=0.5, pre_nms_top_n=dict(training=2000, testing=1000),
                    post_nms_top_n=dict(training=1000, testing=1000), nms_thresh=0.7,
                    box_loss_beta=0.0)
        _update(args, cfg, "rpn")
        return ViTDetRPN(anchors, head, **args)

    def _build_roi_heads(self, channels: int, shape: dict[str, tuple[int, int]],
                         cfg: dict[str, Any], box_cfg: dict[str, Any],
                         mask_cfg: dict[str, Any]) -> ViTDetRoIHeads:
        levels = [name for name in shape if name != "p6"] or list(shape)
        strides = [shape[name][1] for name in levels]
        box_pool = LevelRoIAlign(levels, strides, cfg.pop("box_resolution", 7))
        box_head, dim = heads.build_box_head(channels, box_pool.output_size[0], **box_cfg)
        args = dict(fg_iou_thresh=0.5, bg_iou_thresh=0.5, batch_size_per_image=512,
                    positive_fraction=0.25, bbox_reg_weights=(10.0, 10.0, 5.0, 5.0),
                    score_thresh=0.05, nms_thresh=0.5, detections_per_img=100,
                    box_loss_beta=0.0)
        mask_resolution = cfg.pop("mask_resolution", 14)
        _update(args, cfg, "roi")
        mask = {}
        if self.with_mask:
            mask_head = heads.build_mask_head(channels, **mask_cfg)
            dims = mask_cfg.get("conv_dims", (256,) * 4)
            mask = dict(mask_roi_pool=LevelRoIAlign(levels, strides, mask_resolution),
                        mask_head=mask_head,
                        mask_predictor=heads.build_mask_predictor(dims[-1], self.num_classes))
        box_predictor = heads.build_box_predictor(dim, self.num_classes)
        init_like_detectron2(box_head, box_predictor, mask.get("mask_head"),
                             mask.get("mask_predictor"))
        return ViTDetRoIHeads(box_pool, box_head, box_predictor, **args, **mask)

    # ------------------------------------------------------------------ stages

    def preprocess(self, images: torch.Tensor, sizes: Sequence[tuple[int, int]] | None = None
                   ) -> torch.Tensor:
        """images: (B, 3, H, W) uint8 RGB, padded -> (B, 3, H, W) float normalised as the
        backbone says (PE: [-1, 1]), 0 in the padding beyond each image's unpadded ``sizes``."""
        return self.backbone.normalize(images, sizes)

    def encode(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """x: (B, 3, H, W) float in [-1, 1], H and W multiples of :attr:`size_divisibility` ->
        pyramid maps ``{"p2": (B, C, H/4, W/4), ..., "p6": (B, C, H/64, W/64)}``."""
        return self.pyramid(x)

    def decode(self, features: Mapping[str, torch.Tensor], sizes: Sequence[tuple[int, int]]
               ) -> list[dict[str, torch.Tensor]]:
        """Pyramid maps + unpadded (h, w) per image -> torchvision detections per image:
        ``boxes`` (N, 4) xyxy in input pixels, ``scores`` (N,), ``labels`` (N,) 1-based,
        ``masks`` (N, 1, 28, 28) probabilities (with masks). Eval mode only."""
        if self.training:
            raise RuntimeError("decode/predict need model.eval()")
        feats, image_list = self._image_list(features, sizes)
        proposals, _ = self.rpn(image_list, feats)
        detections, _ = self.roi_heads(feats, proposals, image_list.image_sizes)
        return detections

    def forward(self, images: torch.Tensor, sizes: Sequence[tuple[int, int]] | None = None
                ) -> dict[str, torch.Tensor]:
        """images: (B, 3, H, W) uint8 (collated) -> the pyramid maps (see :meth:`encode`)."""
        return self.encode(self.preprocess(images, sizes))

    def loss(self, images: torch.Tensor, samples: Sequence[dict]) -> dict[str, torch.Tensor]:
        """images: (B, 3, H, W) uint8; samples: dicts with ``img_size``, ``boxes`` (N, 4) xyxy
        input pixels, ``labels`` (N,) 0-based, ``masks`` (N, H, W) -> RPN and RoI losses."""
        if not self.training:
            raise RuntimeError("loss needs model.train(); torchvision's RPN and RoI heads only "
                               "compute losses in training mode")
        sizes = _sizes(images, samples)
        feats, image_list = self._image_list(self.encode(self.preprocess(images, sizes)), sizes)
        targets = [self._target(s, images.device) for s in samples]
        proposals, rpn_losses = self.rpn(image_list, feats, targets)
        _, roi_losses = self.roi_heads(feats, proposals, image_list.image_sizes, targets)
        return {**rpn_losses, **roi_losses}

    def predict(self, images: torch.Tensor, samples: Sequence[dict] | None = None
                ) -> list[dict[str, Any]]:
        """images: (B, 3, H, W) uint8; samples: dicts with ``img_size`` and ``ori_size`` /
        ``scale`` / ``image_id`` -> per image ``{"boxes" (N, 4) xyxy in original pixels,
        "scores" (N,), "labels" (N,) 0-based, "masks" (N, h0, w0) bool, "image_id",
        "ori_size"}`` on the CPU."""
        samples = list(samples) if samples else [{} for _ in range(images.shape[0])]
        sizes = _sizes(images, samples)
        detections = self.decode(self.encode(self.preprocess(images, sizes)), sizes)
        return [self.postprocess(d, s) for d, s in zip(detections, samples, strict=True)]

    @torch.no_grad()
    def predict_images(self, images: Sequence[np.ndarray]) -> list[dict[str, Any]]:
        """(H, W, 3) uint8 RGB arrays -> :meth:`predict` results in their pixels, prepared as
        :attr:`inputs` says (the config's test resize and collate padding); eval mode on the
        model's device, the training flag restored."""
        items = []
        for i, image in enumerate(images):
            image = check_rgb(image)
            results = {"image": image, "ori_size": image.shape[:2], "image_id": i}
            if self.inputs.resize:
                results = ResizeLongestSide(self.inputs.resize)(results)
            items.append(PackDetInputs()(results))
        batch = detection_collate(items, self.inputs.size_divisor, self.inputs.square_size)
        device = next(self.parameters()).device
        was_training = self.training
        self.eval()
        try:
            return self.predict(batch["inputs"].to(device), batch["data_samples"])
        finally:
            self.train(was_training)

    def _image_list(self, features: Mapping[str, torch.Tensor],
                    sizes: Sequence[tuple[int, int]]) -> tuple[OrderedDict, ImageList]:
        """torchvision's inputs: ordered maps and an ImageList of the padded batch size (only
        its shape, dtype and device are read) with the unpadded ``sizes``."""
        feats = OrderedDict(features)
        name, first = next(iter(feats.items()))
        stride = self.pyramid.strides[name]
        h, w = first.shape[-2] * stride, first.shape[-1] * stride
        shell = first.new_empty((first.shape[0], 0, h, w))
        return feats, ImageList(shell, [tuple(int(v) for v in s) for s in sizes])

    def _target(self, sample: dict, device: torch.device) -> dict[str, torch.Tensor]:
        target = {"boxes": sample["boxes"].to(device, torch.float32).reshape(-1, 4),
                  "labels": sample["labels"].to(device, torch.int64) + 1}
        if self.with_mask:
            if "masks" not in sample:
                raise ValueError("with_mask=True but the data has no masks: set with_masks=True "
                                 "in the dataset or with_mask=False in the model")
            target["masks"] = sample["masks"].to(device)
        return target

    def postprocess(self, det: dict[str, torch.Tensor], sample: dict) -> dict[str, Any]:
        """One image's :meth:`decode` output -> original pixels (undo ``scale``, clip to
        ``ori_size``, paste masks, 0-based labels), on the CPU; see :meth:`predict`."""
        sy, sx = sample.get("scale", (1.0, 1.0))
        h0, w0 = sample.get("ori_size", sample.get("img_size"))
        boxes = det["boxes"] / det["boxes"].new_tensor([sx, sy, sx, sy])
        boxes[:, 0::2] = boxes[:, 0::2].clamp(0, w0)
        boxes[:, 1::2] = boxes[:, 1::2].clamp(0, h0)
        out = {"boxes": boxes.cpu(), "scores": det["scores"].cpu(),
               "labels": (det["labels"] - 1).cpu(), "image_id": sample.get("image_id", -1),
               "ori_size": (int(h0), int(w0))}
        if self.with_mask:
            if len(boxes):
                probs = paste_masks(det["masks"], boxes, (int(h0), int(w0)))
                out["masks"] = (probs > self.mask_threshold).cpu()
            else:
                out["masks"] = torch.zeros((0, int(h0), int(w0)), dtype=torch.bool)
        return out


def _sizes(images: torch.Tensor, samples: Sequence[dict] | None) -> list[tuple[int, int]]:
    """Each image's unpadded (h, w): the samples' ``img_size``, else the batch size."""
    full = (int(images.shape[-2]), int(images.shape[-1]))
    if not samples:
        return [full] * int(images.shape[0])
    if len(samples) != images.shape[0]:
        raise ValueError(f"{len(samples)} samples for a batch of {images.shape[0]} images")
    return [tuple(int(v) for v in s.get("img_size", full)) for s in samples]


def _update(args: dict[str, Any], cfg: dict[str, Any], where: str) -> None:
    unknown = sorted(set(cfg) - set(args))
    if unknown:
        raise ValueError(f"unknown {where} option(s) {unknown}; known: {sorted(args)}")
    args.update(cfg)
