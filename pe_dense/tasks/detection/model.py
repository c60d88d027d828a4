"""Mask R-CNN on a PE feature pyramid (``MODELS`` type ``"MaskRCNN"``).

PEViT -> :class:`~pe_dense.necks.pyramid.SimpleFeaturePyramid` (or the multi-layer one) ->
torchvision's RPN, ``MultiScaleRoIAlign`` and ``RoIHeads`` with ViTDet's head choices
(:mod:`pe_dense.tasks.detection.heads`). Runs as an mmengine ``BaseModel``: batches are
``{"inputs": (B, 3, H, W) uint8, "data_samples": [dict, ...]}`` from
:func:`pe_dense.data.collate.detection_collate`.

``VITDET_BACKBONES`` lists the per-variant backbone settings at 1024 px used by
``configs/det/mask_rcnn_pe_spatial_*_coco.py``.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from mmengine.model import BaseModel
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.image_list import ImageList
from torchvision.models.detection.roi_heads import RoIHeads, paste_masks_in_image
from torchvision.models.detection.rpn import RegionProposalNetwork
from torchvision.ops import MultiScaleRoIAlign
from torchvision.ops.poolers import LevelMapper

from pe_dense.engine.registry import MODELS
from pe_dense.necks.pyramid import MultiLayerPyramid, SimpleFeaturePyramid
from pe_dense.tasks.detection import heads

__all__ = ["MaskRCNN", "VITDET_BACKBONES"]

# Backbone options at 1024 px: PE's official G config (window 32 = the tiled 32x32 position
# grid, "abswin"; global blocks 12, 24, 36, 49; drop path 0.5; lr decay 0.9) and ViTDet's
# global-block spacing / drop path / decay for 12- and 24-block models (B: 0.1/0.7, L: 0.4/0.8).
_DET_COMMON = dict(image_size=1024, patch_size=16, pretrain_image_size=512, window_size=32,
                   posemb_mode="tile", rope_mode="interpolate")
VITDET_BACKBONES: dict[str, dict[str, Any]] = {
    "PE-Spatial-T16-512": dict(_DET_COMMON, global_blocks=(2, 5, 8, 11), drop_path=0.1,
                               layer_decay=0.7),
    "PE-Spatial-S16-512": dict(_DET_COMMON, global_blocks=(2, 5, 8, 11), drop_path=0.1,
                               layer_decay=0.7),
    "PE-Spatial-B16-512": dict(_DET_COMMON, global_blocks=(2, 5, 8, 11), drop_path=0.1,
                               layer_decay=0.7),
    "PE-Spatial-L14-448": dict(_DET_COMMON, global_blocks=(5, 11, 17, 23), drop_path=0.4,
                               layer_decay=0.8),
    "PE-Spatial-G14-448": dict(_DET_COMMON, global_blocks=(12, 24, 36, 49), drop_path=0.5,
                               layer_decay=0.9),
}

_PYRAMIDS = {"SimpleFeaturePyramid": SimpleFeaturePyramid, "MultiLayerPyramid": MultiLayerPyramid}


def _build_pyramid(backbone: Any, pyramid: Mapping[str, Any]) -> torch.nn.Module:
    cfg = dict(pyramid)
    kind = cfg.pop("type", "SimpleFeaturePyramid")
    if kind not in _PYRAMIDS:
        raise ValueError(f"pyramid type {kind!r} is not one of {sorted(_PYRAMIDS)}")
    return _PYRAMIDS[kind](backbone, **cfg)


@MODELS.register_module()
class MaskRCNN(BaseModel):
    """Mask R-CNN (or Faster R-CNN with ``with_mask=False``) on a PE pyramid.

    ``backbone``: ``create_backbone`` kwargs (``name``, ``weights``, overrides) or a PEViT;
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
                 mask_threshold: float = 0.5, data_preprocessor: dict | None = None,
                 init_cfg: dict | None = None) -> None:
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        if num_classes < 1:
            raise ValueError(f"num_classes must be >= 1, got {num_classes}")
        self.num_classes, self.with_mask = num_classes, with_mask
        self.mask_threshold = mask_threshold
        self.pyramid = _build_pyramid(backbone, pyramid or {})
        vit = self.pyramid.backbone
        if hasattr(vit, "class_embedding") and not vit.num_prefix_tokens:
            vit.class_embedding.requires_grad_(False)  # windowed: unused (kept to load weights)
        shape = self.pyramid.output_shape()
        if len(anchor_sizes) != len(shape):
            raise ValueError(f"anchor_sizes has {len(anchor_sizes)} entries but the pyramid has "
                             f"{len(shape)} levels {list(shape)}: give one tuple per level")
        channels = next(iter(shape.values()))[0]
        self.rpn = self._build_rpn(channels, anchor_sizes, aspect_ratios, dict(rpn or {}))
        self.roi_heads = self._build_roi_heads(channels, shape, dict(roi or {}),
                                               dict(box_head or {}), dict(mask_head or {}))

    @property
    def backbone(self) -> torch.nn.Module:
        return self.pyramid.backbone

    def _build_rpn(self, channels: int, sizes: Sequence[Sequence[int]],
                   ratios: Sequence[float], cfg: dict[str, Any]) -> RegionProposalNetwork:
        anchors = AnchorGenerator(tuple(tuple(s) for s in sizes),
                                  (tuple(ratios),) * len(sizes))
        head = heads.build_rpn_head(channels, anchors.num_anchors_per_location()[0],
                                    conv_depth=cfg.pop("conv_depth", 2))
        args = dict(fg_iou_thresh=0.7, bg_iou_thresh=0.3, batch_size_per_image=256,
                    positive_fraction=0.5, pre_nms_top_n=dict(training=2000, testing=1000),
                    post_nms_top_n=dict(training=1000, testing=1000), nms_thresh=0.7)
        _update(args, cfg, "rpn")
        return RegionProposalNetwork(anchors, head, **args)

    def _build_roi_heads(self, channels: int, shape: dict[str, tuple[int, int]],
                         cfg: dict[str, Any], box_cfg: dict[str, Any],
                         mask_cfg: dict[str, Any]) -> RoIHeads:
        levels = [name for name in shape if name != "p6"] or list(shape)
        strides = [shape[name][1] for name in levels]
        box_pool = _roi_pool(levels, strides, cfg.pop("box_resolution", 7))
        box_head, dim = heads.build_box_head(channels, box_pool.output_size[0], **box_cfg)
        args = dict(fg_iou_thresh=0.5, bg_iou_thresh=0.5, batch_size_per_image=512,
                    positive_fraction=0.25, bbox_reg_weights=(10.0, 10.0, 5.0, 5.0),
                    score_thresh=0.05, nms_thresh=0.5, detections_per_img=100)
        mask_resolution = cfg.pop("mask_resolution", 14)
        _update(args, cfg, "roi")
        mask = {}
        if self.with_mask:
            mask_head = heads.build_mask_head(channels, **mask_cfg)
            dims = mask_cfg.get("conv_dims", (256,) * 4)
            mask = dict(mask_roi_pool=_roi_pool(levels, strides, mask_resolution),
                        mask_head=mask_head,
                        mask_predictor=heads.build_mask_predictor(dims[-1], self.num_classes))
        return RoIHeads(box_pool, box_head, heads.build_box_predictor(dim, self.num_classes),
                        **args, **mask)

    # ------------------------------------------------------------------ forward

    def forward(self, inputs: torch.Tensor, data_samples: list[dict] | None = None,
                mode: str = "tensor") -> Any:
        """inputs: (B, 3, H, W) uint8 (zero-padded batch); data_samples: per-image dicts with
        ``img_size`` (and ``boxes``/``labels``/``masks`` for ``mode="loss"``, ``ori_size`` /
        ``scale`` for ``mode="predict"``).

        ``"loss"`` -> dict of RPN and RoI losses; ``"predict"`` -> per image ``{"boxes" (N, 4)
        xyxy in original pixels, "scores" (N,), "labels" (N,) 0-based, "masks" (N, h0, w0) bool,
        "image_id"}``; ``"tensor"`` -> the pyramid maps.
        """
        images, sizes = self._prepare(inputs, data_samples)
        feats = self.pyramid(images)
        if mode == "tensor":
            return feats
        feats = OrderedDict(feats)
        image_list = ImageList(images, sizes)
        if mode == "loss":
            if not self.training:
                raise RuntimeError("mode='loss' needs model.train(); torchvision's RPN and RoI "
                                   "heads only compute losses in training mode")
            targets = [self._target(s, images.device) for s in data_samples]
            proposals, rpn_losses = self.rpn(image_list, feats, targets)
            _, roi_losses = self.roi_heads(feats, proposals, sizes, targets)
            return {**rpn_losses, **roi_losses}
        if mode == "predict":
            if self.training:
                raise RuntimeError("mode='predict' needs model.eval()")
            proposals, _ = self.rpn(image_list, feats)
            detections, _ = self.roi_heads(feats, proposals, sizes)
            return [self._postprocess(d, s) for d, s in zip(detections, data_samples, strict=True)]
        raise ValueError(f"mode={mode!r} is not one of 'loss', 'predict', 'tensor'")

    def _prepare(self, inputs: torch.Tensor, data_samples: list[dict] | None
                 ) -> tuple[torch.Tensor, list[tuple[int, int]]]:
        """uint8 batch -> [-1, 1] floats, 0 (the mean) in the padding, padded for the pyramid."""
        if inputs.ndim != 4 or inputs.shape[1] != 3:
            raise ValueError(f"expected inputs (B, 3, H, W), got {tuple(inputs.shape)}")
        x = inputs.float() / 127.5 - 1.0 if inputs.dtype == torch.uint8 else inputs.float()
        full = (int(x.shape[-2]), int(x.shape[-1]))
        sizes = [tuple(int(v) for v in s.get("img_size", full)) for s in data_samples] \
            if data_samples else [full] * x.shape[0]
        for i, (h, w) in enumerate(sizes):
            x[i, :, h:] = 0.0
            x[i, :, :, w:] = 0.0
        return self.pyramid.pad(x), sizes

    def _target(self, sample: dict, device: torch.device) -> dict[str, torch.Tensor]:
        target = {"boxes": sample["boxes"].to(device, torch.float32).reshape(-1, 4),
                  "labels": sample["labels"].to(device, torch.int64) + 1}
        if self.with_mask:
            if "masks" not in sample:
                raise ValueError("with_mask=True but the data has no masks: set with_masks=True "
                                 "in the dataset or with_mask=False in the model")
            target["masks"] = sample["masks"].to(device)
        return target

    def _postprocess(self, det: dict[str, torch.Tensor], sample: dict) -> dict[str, Any]:
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
                probs = paste_masks_in_image(det["masks"], boxes, (int(h0), int(w0)), padding=1)
                out["masks"] = (probs[:, 0] > self.mask_threshold).cpu()
            else:
                out["masks"] = torch.zeros((0, int(h0), int(w0)), dtype=torch.bool)
        return out


def _roi_pool(levels: list[str], strides: list[int], resolution: int) -> MultiScaleRoIAlign:
    """MultiScaleRoIAlign with level scales fixed from the pyramid strides (torchvision would
    infer them from the first batch's image sizes, which square padding would skew)."""
    pool = MultiScaleRoIAlign(levels, output_size=resolution, sampling_ratio=0)
    pool.scales = [1.0 / s for s in strides]
    lvl = [int(torch.log2(torch.tensor(float(s))).item()) for s in strides]
    pool.map_levels = LevelMapper(min(lvl), max(lvl))
    return pool


def _update(args: dict[str, Any], cfg: dict[str, Any], where: str) -> None:
    unknown = sorted(set(cfg) - set(args))
    if unknown:
        raise ValueError(f"unknown {where} option(s) {unknown}; known: {sorted(args)}")
    args.update(cfg)
