"""Monocular depth on PE: backbone + DPT or linear-bins head, a plain ``nn.Module``.

:class:`DepthEstimator` reads four (DPT) or one/four (linear) blocks through
``forward_intermediates``, predicts metres in ``[min_depth, max_depth]`` at the image size,
trains with SiLog (+ optional gradient loss) and predicts with optional flip averaging and
optional sliding windows (mmseg's "slide" mode, :meth:`DenseModel.slide`).

Stages (the demo, the Predictor and export call these): ``preprocess`` (uint8 -> [-1, 1]),
``encode`` (-> list of block maps), ``decode`` (-> depth at the image size), ``forward`` (all
three), ``loss``, ``predict`` and ``predict_images`` (-> (H, W) float32 metres). Batches come
from :func:`pe_dense.data.depth.depth_collate`, padded once to ``size_divisor`` (the patch
size); only flip / ``input_scale`` inference pads its resized or flipped image again. The
mmengine model, dataset, collate and metric registrations live in
:mod:`pe_dense.engine.tasks.depth`. Configs: ``configs/depth/``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from pe_dense.backbone.contract import Backbone, one_indices
from pe_dense.backbone.factory import build_backbone
from pe_dense.tasks.common import (
    BackboneFeatures,
    DenseModel,
    build_module,
    check_inference_cfg,
)
from pe_dense.tasks.depth.heads import DPTHead, LinearBinsHead, dpt_config
from pe_dense.tasks.depth.losses import gradient_loss, silog_loss

__all__ = ["DepthEstimator", "DEPTH_HEADS"]

DEPTH_HEADS = {"DPTHead": DPTHead, "LinearBinsHead": LinearBinsHead}
LOSS_OPTIONS = ("variance_focus", "gradient_weight", "scale")


class DepthEstimator(DenseModel):
    """PE depth model.

    ``backbone``: a Backbone or ``create_backbone`` kwargs. ``head``: a module or
    ``dict(type="DPTHead" | "LinearBinsHead", ...)``; for DPT, ``embed_dim``/``features``/
    ``out_channels`` default to the Depth Anything widths of the variant (``variant`` or the
    backbone dict's ``name``), and ``layers`` to the variant's four blocks; the linear head
    defaults to the last block. ``loss``: ``dict(variance_focus=0.15, gradient_weight=0.0,
    scale=1.0)``. ``flip_test``: average the prediction with that of the flipped image;
    ``input_scale``: resize images by this factor for inference (the depth map is resized
    back), to match a model trained with ``DepthTransform(scale=...)``. ``inference``:
    ``dict(mode="whole")`` (default) or ``dict(mode="slide", crop_size=(h, w), stride=(h, w),
    batch_size=1)``: overlapping windows of the (scaled) image, depths averaged where they
    overlap. ``size_divisor`` (derived): the patch size.
    """

    task = "depth"

    def __init__(self, *, backbone: Backbone | Mapping[str, Any], head: nn.Module | Mapping,
                 indices: Sequence[int] | None = None, variant: str | None = None,
                 layers: Sequence[int] | None = None,
                 freeze_backbone: bool = True, min_depth: float = 1e-3, max_depth: float = 10.0,
                 loss: Mapping | None = None, flip_test: bool = False,
                 input_scale: float = 1.0, inference: Mapping | None = None) -> None:
        super().__init__()
        self.inference_cfg = check_inference_cfg(inference)
        self.min_depth, self.max_depth = float(min_depth), float(max_depth)
        self.flip_test, self.input_scale = flip_test, float(input_scale)
        self.loss_cfg = {"variance_focus": 0.15, "gradient_weight": 0.0, "scale": 1.0,
                         **dict(loss or {})}
        unknown = set(self.loss_cfg) - set(LOSS_OPTIONS)
        if unknown:
            raise ValueError(f"unknown loss options {sorted(unknown)}; use {list(LOSS_OPTIONS)}")
        if variant is None and isinstance(backbone, Mapping):
            variant = backbone.get("name")
        vit = build_backbone(backbone)
        indices = one_indices(indices, None, "DepthEstimator", layers=layers)
        indices, defaults = self._head_defaults(head, vit, indices, variant)
        self.features = BackboneFeatures(vit, indices, freeze_backbone)
        self.head = build_module(head, DEPTH_HEADS, "depth head", **defaults)
        self.size_divisor = vit.patch_size

    def _head_defaults(self, head: nn.Module | Mapping, vit: Backbone,
                       layers: Sequence[int] | None, variant: str | None
                       ) -> tuple[Sequence[int], dict[str, Any]]:
        """The blocks to read and the head's default keyword arguments."""
        kind = head.get("type") if isinstance(head, Mapping) else type(head).__name__
        defaults: dict[str, Any] = {"min_depth": self.min_depth, "max_depth": self.max_depth}
        if kind == "DPTHead":
            cfg = dpt_config(variant or "", vit.num_layers, vit.embed_dim)
            layers = cfg["layers"] if layers is None else layers
            defaults.update(embed_dim=vit.embed_dim, features=cfg["features"],
                            out_channels=cfg["out_channels"])
        else:
            layers = [-1] if layers is None else layers
            readout = bool(head.get("readout", False)) if isinstance(head, Mapping) else False
            defaults["in_channels"] = vit.embed_dim * len(layers) * (2 if readout else 1)
        return layers, defaults

    @property
    def backbone(self) -> Backbone:
        return self.features.backbone

    # ---------------------------------------------------------------------------- stages

    def encode(self, x: torch.Tensor) -> list[torch.Tensor]:
        """x: (B, 3, H, W) in [-1, 1], H and W multiples of the patch size -> the blocks
        ``features.layers`` as (B, C, H/p, W/p) maps."""
        return self.features(x)

    def decode(self, features: Sequence[torch.Tensor],
               image_size: tuple[int, int]) -> torch.Tensor:
        """Maps from :meth:`encode` -> depth (B, 1, H, W) in metres at ``image_size``."""
        return self.head(list(features), image_size=tuple(image_size))

    def loss(self, images: torch.Tensor, samples: Sequence[dict]) -> dict[str, torch.Tensor]:
        """images: (B, 3, H, W) uint8 batch; samples with ``"depth"`` (1, H, W) metres (0 =
        no measurement, as the padding) -> ``{"loss_silog"}`` (+ ``"loss_grad"``)."""
        pred, target = self.training_outputs(images, samples, "depth",
                                             "pe_dense.data.depth.depth_collate")
        cfg = self.loss_cfg
        out = {"loss_silog": silog_loss(pred, target, cfg["variance_focus"], self.min_depth,
                                        self.max_depth, scale=cfg["scale"])}
        if cfg["gradient_weight"]:
            out["loss_grad"] = cfg["gradient_weight"] * gradient_loss(
                pred, target, min_depth=self.min_depth, max_depth=self.max_depth)
        return out

    # ------------------------------------------------------------------------- inference

    @torch.no_grad()
    def inference(self, x: torch.Tensor) -> torch.Tensor:
        """One unpadded image x: (1, 3, h, w) in [-1, 1] -> (1, 1, h, w) metres, computed at
        ``input_scale`` times the size, whole or in sliding windows (``inference_cfg``), each
        pass flip-averaged when ``flip_test``."""
        xs = x
        if self.input_scale != 1.0:
            size = [max(1, round(s * self.input_scale)) for s in x.shape[-2:]]
            xs = F.interpolate(x, size=size, mode="bilinear", align_corners=False)
        depth = self.slide(xs) if self.slides else self.window_inference(xs)
        if depth.shape[-2:] != x.shape[-2:]:
            depth = F.interpolate(depth, size=x.shape[-2:], mode="bilinear",
                                  align_corners=False)
        return depth

    def window_inference(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, 3, h, w) in [-1, 1] of any size -> (B, 1, h, w) metres, averaged with the
        flipped image's prediction when ``flip_test``."""
        depth = self.run_padded(x)
        if self.flip_test:
            depth = 0.5 * (depth + self.run_padded(x.flip(-1)).flip(-1))
        return depth

    prediction_key = "pred_depth"

    @property
    def per_image_inference(self) -> bool:
        return self.flip_test or self.input_scale != 1.0 or self.slides

    def image_result(self, output: torch.Tensor, sample: Mapping,
                     size: tuple[int, int]) -> dict:
        """``{"pred_depth": (h, w) metres}`` (+ ``"gt_depth"`` cropped to (h, w), ``"path"``)."""
        h, w = size
        result = {"pred_depth": output[0, 0].cpu()}
        if "depth" in sample:
            result["gt_depth"] = sample["depth"][0, :h, :w].cpu()
        if "path" in sample:
            result["path"] = sample["path"]
        return result
