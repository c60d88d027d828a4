"""Semantic segmentation on PE: backbone (+ optional pyramid) + head, as an mmengine model.

:class:`Segmentor` reads the backbone through ``forward_intermediates`` (probe heads: the maps
of ``layers`` concatenated; UPerNet: the levels p2..p5 of a :mod:`pe_dense.necks.pyramid`
neck), upsamples the logits to the image and trains with pixel cross-entropy. Inference is
"whole" (pad to the patch/pyramid multiple, one pass) or "slide" (overlapping crops, logits
averaged), after an optional keep-ratio resize to ``test_scale``; predictions come back at the
input's original size.

Importing this module registers, in :mod:`pe_dense.engine.registry` (scope ``pe_dense``): the
model ``Segmentor``, the datasets ``SegFolderDataset`` / ``ADE20KDataset``, the collate function
``pe_dense.seg_collate`` and the metric ``SegIoUMetric`` (mmseg's ``IoUMetric`` definitions).
Configs: ``configs/seg/``.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from mmengine.evaluator import BaseMetric
from mmengine.model import BaseModel
from torch import nn

from pe_dense.backbone.pe_vit import PEViT
from pe_dense.data.segmentation import ADE20KDataset, SegFolderDataset
from pe_dense.data.segmentation import seg_collate as _seg_collate
from pe_dense.engine.registry import DATASETS, FUNCTIONS, METRICS, MODELS
from pe_dense.evaluation.segmentation import areas_to_metrics, intersect_and_union
from pe_dense.necks.pyramid import MultiLayerPyramid, SimpleFeaturePyramid, build_backbone
from pe_dense.tasks.common import predict_on_images
from pe_dense.tasks.losses import seg_cross_entropy
from pe_dense.tasks.segmentation.heads import LinearConvHead, LinearHead, UPerHead

__all__ = ["Segmentor", "SegIoUMetric", "seg_collate", "build_module", "pad_to_multiple",
           "BackboneFeatures"]

log = logging.getLogger(__name__)

SEG_HEADS = {"LinearHead": LinearHead, "LinearConvHead": LinearConvHead, "UPerHead": UPerHead}
NECKS = {"MultiLayerPyramid": MultiLayerPyramid, "SimpleFeaturePyramid": SimpleFeaturePyramid}

DATASETS.register_module(module=SegFolderDataset)
DATASETS.register_module(module=ADE20KDataset)


def build_module(spec: nn.Module | Mapping[str, Any], table: Mapping[str, type], what: str,
                 **defaults: Any) -> nn.Module:
    """An nn.Module as given, or ``table[spec["type"]](**defaults, **rest)`` from a dict."""
    if isinstance(spec, nn.Module):
        return spec
    if not isinstance(spec, Mapping) or "type" not in spec:
        raise ValueError(f"{what} must be a module or a dict with a 'type' in {sorted(table)}, "
                         f"got {spec!r}")
    kwargs = dict(spec)
    kind = kwargs.pop("type")
    if kind not in table:
        raise ValueError(f"unknown {what} type {kind!r}; use one of {sorted(table)}")
    return table[kind](**{**defaults, **kwargs})


def pad_to_multiple(x: torch.Tensor, multiple: int, value: float = 0.0) -> torch.Tensor:
    """Pad (B, C, H, W) bottom/right so H and W are multiples of ``multiple``."""
    h, w = x.shape[-2:]
    ph, pw = -h % multiple, -w % multiple
    return F.pad(x, (0, pw, 0, ph), value=value) if ph or pw else x


class BackboneFeatures(nn.Module):
    """A PEViT read at ``layers`` through ``forward_intermediates``; frozen (eval mode, no
    gradients) when ``freeze``. ``forward(x)``: (B, 3, H, W) -> list of (B, C, H/p, W/p)."""

    def __init__(self, backbone: PEViT | Mapping[str, Any], layers: Sequence[int],
                 freeze: bool) -> None:
        super().__init__()
        self.backbone = build_backbone(backbone)
        self.layers = [int(i) for i in layers]
        for i in self.layers:
            self.backbone._block_index(i)  # raises a clear error for a bad index
        self.freeze = freeze
        if freeze:
            self.backbone.requires_grad_(False)

    def train(self, mode: bool = True) -> BackboneFeatures:
        super().train(mode)
        if self.freeze:
            self.backbone.eval()
        return self

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        if self.freeze:
            with torch.no_grad():
                return self.backbone.forward_intermediates(x, self.layers)
        return self.backbone.forward_intermediates(x, self.layers)


@MODELS.register_module()
class Segmentor(BaseModel):
    """PE segmentation model.

    ``backbone``: a PEViT or ``create_backbone`` kwargs (``{"name": ..., "weights": ...}``).
    ``head``: a module or ``dict(type="LinearHead" | "LinearConvHead" | "UPerHead", ...)``;
    ``in_channels`` is filled in when absent. ``layers``: blocks read by probe heads (e.g.
    ``[-1]`` or ``[-4, -3, -2, -1]``). ``neck``: ``dict(type="MultiLayerPyramid", indices=...)``
    or ``SimpleFeaturePyramid`` for UPerNet (levels p2..p5 feed the head). ``inference``:
    ``dict(mode="whole")`` or ``dict(mode="slide", crop_size=(512, 512), stride=(341, 341))``;
    ``test_scale``: keep-ratio resize box (long, short) before inference, e.g. (2048, 512).
    """

    task = "segmentation"

    def __init__(self, *, backbone: PEViT | Mapping[str, Any], head: nn.Module | Mapping,
                 num_classes: int, layers: Sequence[int] = (-1,), neck: Mapping | None = None,
                 freeze_backbone: bool = True, ignore_index: int = 255,
                 class_names: Sequence[str] | None = None, inference: Mapping | None = None,
                 test_scale: tuple[int, int] | None = None,
                 data_preprocessor: Mapping | None = None, init_cfg: Any = None) -> None:
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.num_classes, self.ignore_index = num_classes, ignore_index
        self.class_names = tuple(class_names) if class_names else None
        self.inference_cfg = dict(inference or {"mode": "whole"})
        if self.inference_cfg.get("mode", "whole") not in ("whole", "slide"):
            raise ValueError(f"inference mode {self.inference_cfg['mode']!r}: use whole/slide")
        self.test_scale = tuple(test_scale) if test_scale else None
        if neck is not None:
            spec = {**dict(neck), "top_block": False}
            spec.setdefault("freeze_backbone", freeze_backbone)
            self.neck = build_module(spec, NECKS, "neck", backbone=build_backbone(backbone))
            self.features = None
            channels = [c for c, _ in self.neck.output_shape().values()]
            head_defaults = {"in_channels": channels}
            self.size_divisor = max(self.neck.size_divisibility, self.neck.backbone.patch_size)
        else:
            self.neck = None
            self.features = BackboneFeatures(backbone, layers, freeze_backbone)
            vit = self.features.backbone
            head_defaults = {"in_channels": vit.embed_dim * len(self.features.layers)}
            self.size_divisor = vit.patch_size
        self.head = build_module(head, SEG_HEADS, "segmentation head", num_classes=num_classes,
                                 **head_defaults)

    @property
    def backbone(self) -> PEViT:
        return self.neck.backbone if self.neck is not None else self.features.backbone

    # --------------------------------------------------------------------------- forward

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W), H and W multiples of ``size_divisor`` -> logits (B, K, H, W)."""
        if self.neck is not None:
            levels = self.neck(images)
            maps = [levels[k] for k in sorted(levels, key=lambda k: int(k[1:]))]
        else:
            maps = self.features(images)
        logits = self.head(maps)
        return F.interpolate(logits, size=images.shape[-2:], mode="bilinear",
                             align_corners=False)

    def forward(self, inputs: torch.Tensor, data_samples: list[dict] | None = None,
                mode: str = "tensor") -> Any:
        if mode == "loss":
            if data_samples is None:
                raise ValueError("mode='loss' needs data_samples with labels")
            labels = torch.stack([s["label"] for s in data_samples]).to(inputs.device)
            logits = self.encode(pad_to_multiple(inputs, self.size_divisor))
            logits = logits[..., : inputs.shape[-2], : inputs.shape[-1]]
            loss = seg_cross_entropy(logits, labels, self.ignore_index)
            with torch.no_grad():
                keep = labels != self.ignore_index
                acc = (logits.argmax(1)[keep] == labels[keep]).float().mean()
            return {"loss_ce": loss, "acc_seg": acc.nan_to_num(0.0)}
        if mode == "predict":
            return self.predict(inputs, data_samples)
        if mode == "tensor":
            return self.encode(pad_to_multiple(inputs, self.size_divisor))
        raise ValueError(f"mode={mode!r}: use 'loss', 'predict' or 'tensor'")

    # ------------------------------------------------------------------------- inference

    @torch.no_grad()
    def inference(self, image: torch.Tensor) -> torch.Tensor:
        """One (1, 3, H, W) image -> logits (1, K, H, W), by ``inference_cfg`` after the
        optional ``test_scale`` resize (logits are resized back to H x W)."""
        h, w = image.shape[-2:]
        x = image
        if self.test_scale:
            long_edge, short_edge = max(self.test_scale), min(self.test_scale)
            f = min(long_edge / max(h, w), short_edge / min(h, w))
            x = F.interpolate(image, size=(int(h * f + 0.5), int(w * f + 0.5)),
                              mode="bilinear", align_corners=False)
        if self.inference_cfg.get("mode", "whole") == "slide":
            logits = self._slide(x)
        else:
            logits = self.encode(pad_to_multiple(x, self.size_divisor))
            logits = logits[..., : x.shape[-2], : x.shape[-1]]
        if logits.shape[-2:] != (h, w):
            logits = F.interpolate(logits, size=(h, w), mode="bilinear", align_corners=False)
        return logits

    def _slide(self, x: torch.Tensor) -> torch.Tensor:
        ch, cw = self.inference_cfg.get("crop_size", (512, 512))
        sh, sw = self.inference_cfg.get("stride", (341, 341))
        h, w = x.shape[-2:]
        rows = max(h - ch + sh - 1, 0) // sh + 1
        cols = max(w - cw + sw - 1, 0) // sw + 1
        logits = x.new_zeros(x.shape[0], self.num_classes, h, w)
        count = x.new_zeros(1, 1, h, w)
        for r in range(rows):
            for c in range(cols):
                y2, x2 = min(r * sh + ch, h), min(c * sw + cw, w)
                y1, x1 = max(y2 - ch, 0), max(x2 - cw, 0)
                crop = x[..., y1:y2, x1:x2]
                out = self.encode(pad_to_multiple(crop, self.size_divisor))
                logits[..., y1:y2, x1:x2] += out[..., : y2 - y1, : x2 - x1]
                count[..., y1:y2, x1:x2] += 1
        return logits / count

    def predict(self, inputs: torch.Tensor, data_samples: list[dict] | None = None) -> list[dict]:
        """Per image ``{"pred": (h, w) int64}`` (+ ``"label"`` when the sample has one), for
        each sample's unpadded ``size``, resized to its ``gt_label`` if that differs. Use test
        pipelines without resizing (``test_scale`` resizes inside) so labels keep their size."""
        results = []
        for i in range(inputs.shape[0]):
            sample = data_samples[i] if data_samples else {}
            h, w = sample.get("size", inputs.shape[-2:])
            logits = self.inference(inputs[i: i + 1, :, :h, :w])
            gt = sample.get("gt_label")
            if gt is not None and tuple(gt.shape) != tuple(logits.shape[-2:]):
                logits = F.interpolate(logits, size=tuple(gt.shape), mode="bilinear",
                                       align_corners=False)
            out = {"pred": logits[0].argmax(0).cpu()}
            if "gt_label" in sample:
                out["label"] = sample["gt_label"].cpu()
            if "path" in sample:
                out["path"] = sample["path"]
            results.append(out)
        return results

    def predict_images(self, images: Sequence[np.ndarray]) -> list[np.ndarray]:
        """uint8 (H, W, 3) RGB images -> (H, W) int64 class maps at the original size."""
        return predict_on_images(self, images, lambda logits: logits[0].argmax(0))


@FUNCTIONS.register_module(name="seg_collate")
def seg_collate(samples: Sequence[dict], ignore_index: int = 255, size_divisor: int = 1) -> dict:
    """Collate for :class:`Segmentor`: ``{"inputs": (B, 3, H, W), "data_samples": [{"label",
    "gt_label" (the label before padding), "size", "ori_size", "path"}]}``."""
    batch = _seg_collate(samples, ignore_index=ignore_index, size_divisor=size_divisor)
    data_samples = [
        {"label": batch["label"][i], "gt_label": s["label"], "size": batch["size"][i],
         "ori_size": batch["ori_size"][i], "path": batch["path"][i]}
        for i, s in enumerate(samples)]
    return {"inputs": batch["image"], "data_samples": data_samples}


@METRICS.register_module()
class SegIoUMetric(BaseMetric):
    """mIoU / mAcc / aAcc with mmseg's ``IoUMetric`` definitions (dataset-level area totals,
    NaN-mean over classes, percent rounded to 2 decimals). Needs ground truth at the
    prediction's size (``"label"`` in the model outputs)."""

    default_prefix = ""

    def __init__(self, *, num_classes: int, ignore_index: int = 255,
                 class_names: Sequence[str] | None = None, collect_device: str = "cpu",
                 prefix: str | None = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        self.num_classes, self.ignore_index = num_classes, ignore_index
        self.class_names = tuple(class_names) if class_names else None

    def process(self, data_batch: Any, data_samples: Sequence[dict]) -> None:
        for out in data_samples:
            if "label" not in out:
                raise ValueError("SegIoUMetric needs ground-truth labels: evaluate a split "
                                 "whose samples have labels")
            areas = intersect_and_union(out["pred"], out["label"], self.num_classes,
                                        self.ignore_index)
            self.results.append(torch.stack(areas))

    def compute_metrics(self, results: list) -> dict[str, float]:
        if not results:
            raise RuntimeError("SegIoUMetric: no images were evaluated (empty split)")
        inter, union, area_pred, area_label = torch.stack(results).sum(0)
        m = areas_to_metrics(inter, union, area_pred, area_label)
        names = self.class_names or [str(i) for i in range(self.num_classes)]
        table = ", ".join(f"{n} {v:.2f}" for n, v in zip(names, m["IoU"], strict=False)
                          if not math.isnan(v))
        log.info("per-class IoU: %s", table)
        return {k: round(float(m[k]), 2) for k in ("aAcc", "mIoU", "mAcc")}
