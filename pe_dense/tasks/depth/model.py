"""Monocular depth on PE: backbone + DPT or linear-bins head, as an mmengine model.

:class:`DepthEstimator` reads four (DPT) or one/four (linear) blocks through
``forward_intermediates``, predicts metres in ``[min_depth, max_depth]`` at the image size,
trains with SiLog (+ optional gradient loss) and predicts with optional flip averaging.
Images are padded (bottom/right) to the patch multiple and the prediction cropped back.

Importing this module registers, in :mod:`pe_dense.engine.registry`: the model
``DepthEstimator``, the datasets ``NYUFolderDataset`` / ``NYUSplitDataset``, the collate
function ``pe_dense.depth_collate`` and the metric ``DepthMetric`` (per-image errors on the
Eigen crop within min/max depth, averaged). Configs: ``configs/depth/``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from mmengine.evaluator import BaseMetric
from mmengine.model import BaseModel
from torch import nn

from pe_dense.backbone.pe_vit import PEViT
from pe_dense.data.depth import NYUFolderDataset, NYUSplitDataset
from pe_dense.data.depth import depth_collate as _depth_collate
from pe_dense.engine.registry import DATASETS, FUNCTIONS, METRICS, MODELS
from pe_dense.evaluation.depth import METRIC_NAMES, depth_errors
from pe_dense.tasks.common import predict_on_images
from pe_dense.tasks.depth.heads import DPTHead, LinearBinsHead, dpt_config
from pe_dense.tasks.losses import gradient_loss, silog_loss
from pe_dense.tasks.segmentation.model import BackboneFeatures, build_module, pad_to_multiple

__all__ = ["DepthEstimator", "DepthMetric", "depth_collate"]

log = logging.getLogger(__name__)

DEPTH_HEADS = {"DPTHead": DPTHead, "LinearBinsHead": LinearBinsHead}

DATASETS.register_module(module=NYUFolderDataset)
DATASETS.register_module(module=NYUSplitDataset)


@MODELS.register_module()
class DepthEstimator(BaseModel):
    """PE depth model.

    ``backbone``: a PEViT or ``create_backbone`` kwargs. ``head``: a module or
    ``dict(type="DPTHead" | "LinearBinsHead", ...)``; for DPT, ``embed_dim``/``features``/
    ``out_channels`` default to the Depth Anything widths of the variant (``variant`` or the
    backbone dict's ``name``), and ``layers`` to the variant's four blocks; the linear head
    defaults to the last block. ``loss``: ``dict(variance_focus=0.15, gradient_weight=0.0,
    scale=1.0)``. ``flip_test``: average the prediction with that of the flipped image;
    ``input_scale``: resize images by this factor for inference (the depth map is resized
    back), to match a model trained with ``DepthTransform(scale=...)``.
    """

    task = "depth"

    def __init__(self, *, backbone: PEViT | Mapping[str, Any], head: nn.Module | Mapping,
                 layers: Sequence[int] | None = None, variant: str | None = None,
                 freeze_backbone: bool = True, min_depth: float = 1e-3, max_depth: float = 10.0,
                 loss: Mapping | None = None, flip_test: bool = False, input_scale: float = 1.0,
                 data_preprocessor: Mapping | None = None, init_cfg: Any = None) -> None:
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.min_depth, self.max_depth = float(min_depth), float(max_depth)
        self.flip_test, self.input_scale = flip_test, float(input_scale)
        self.loss_cfg = {"variance_focus": 0.15, "gradient_weight": 0.0, "scale": 1.0,
                         **dict(loss or {})}
        unknown = set(self.loss_cfg) - {"variance_focus", "gradient_weight", "scale"}
        if unknown:
            raise ValueError(f"unknown loss options {sorted(unknown)}")
        if variant is None and isinstance(backbone, Mapping):
            variant = backbone.get("name")
        kind = head.get("type") if isinstance(head, Mapping) else type(head).__name__
        probe = BackboneFeatures(backbone, [-1], freeze_backbone)  # validated build
        vit = probe.backbone
        defaults: dict[str, Any] = {"min_depth": self.min_depth, "max_depth": self.max_depth}
        if kind == "DPTHead":
            cfg = dpt_config(variant or "", vit.num_layers)
            layers = cfg["layers"] if layers is None else layers
            defaults.update(embed_dim=vit.embed_dim, features=cfg["features"],
                            out_channels=cfg["out_channels"])
        else:
            layers = [-1] if layers is None else layers
            readout = bool(head.get("readout", False)) if isinstance(head, Mapping) else False
            defaults["in_channels"] = vit.embed_dim * len(layers) * (2 if readout else 1)
        probe.layers = [int(i) for i in layers]
        for i in probe.layers:
            vit._block_index(i)
        self.features = probe
        self.head = build_module(head, DEPTH_HEADS, "depth head", **defaults)
        self.size_divisor = vit.patch_size

    @property
    def backbone(self) -> PEViT:
        return self.features.backbone

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) -> (B, 1, H, W) metres (padding to the patch multiple inside)."""
        h, w = images.shape[-2:]
        x = pad_to_multiple(images, self.size_divisor)
        depth = self.head(self.features(x), image_size=tuple(x.shape[-2:]))
        return depth[..., :h, :w]

    def loss(self, pred: torch.Tensor, target: torch.Tensor) -> dict[str, torch.Tensor]:
        cfg = self.loss_cfg
        out = {"loss_silog": silog_loss(pred, target, cfg["variance_focus"], self.min_depth,
                                        self.max_depth, scale=cfg["scale"])}
        if cfg["gradient_weight"]:
            out["loss_grad"] = cfg["gradient_weight"] * gradient_loss(
                pred, target, min_depth=self.min_depth, max_depth=self.max_depth)
        return out

    def forward(self, inputs: torch.Tensor, data_samples: list[dict] | None = None,
                mode: str = "tensor") -> Any:
        if mode == "loss":
            if data_samples is None:
                raise ValueError("mode='loss' needs data_samples with depth")
            target = torch.stack([s["depth"] for s in data_samples]).to(inputs.device)
            return self.loss(self.encode(inputs), target)
        if mode == "predict":
            return self.predict(inputs, data_samples)
        if mode == "tensor":
            return self.encode(inputs)
        raise ValueError(f"mode={mode!r}: use 'loss', 'predict' or 'tensor'")

    @torch.no_grad()
    def inference(self, image: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) -> (B, 1, H, W) metres, flip-averaged when ``flip_test``, computed
        at ``input_scale`` times the size."""
        x = image
        if self.input_scale != 1.0:
            size = [max(1, round(s * self.input_scale)) for s in image.shape[-2:]]
            x = F.interpolate(image, size=size, mode="bilinear", align_corners=False)
        depth = self.encode(x)
        if self.flip_test:
            depth = 0.5 * (depth + self.encode(x.flip(-1)).flip(-1))
        if depth.shape[-2:] != image.shape[-2:]:
            depth = F.interpolate(depth, size=image.shape[-2:], mode="bilinear",
                                  align_corners=False)
        return depth

    def predict(self, inputs: torch.Tensor, data_samples: list[dict] | None = None) -> list[dict]:
        """Per image ``{"pred_depth": (h, w) metres}`` (+ ``"gt_depth"``) cropped to each
        sample's unpadded ``size``."""
        results = []
        for i in range(inputs.shape[0]):
            sample = data_samples[i] if data_samples else {}
            h, w = sample.get("size", inputs.shape[-2:])
            out = {"pred_depth": self.inference(inputs[i: i + 1, :, :h, :w])[0, 0].cpu()}
            if "depth" in sample:
                out["gt_depth"] = sample["depth"][0, :h, :w].cpu()
            if "path" in sample:
                out["path"] = sample["path"]
            results.append(out)
        return results

    def predict_images(self, images: Sequence[np.ndarray]) -> list[np.ndarray]:
        """uint8 (H, W, 3) RGB images -> (H, W) float32 depth in metres."""
        return predict_on_images(self, images, lambda depth: depth[0, 0])


@FUNCTIONS.register_module(name="depth_collate")
def depth_collate(samples: Sequence[dict], size_divisor: int = 1) -> dict:
    """Collate for :class:`DepthEstimator`: ``{"inputs": (B, 3, H, W), "data_samples":
    [{"depth": (1, H, W), "size", "path"}]}``."""
    batch = _depth_collate(samples, size_divisor=size_divisor)
    data_samples = [{"depth": batch["depth"][i], "size": batch["size"][i],
                     "path": batch["path"][i]} for i in range(len(samples))]
    return {"inputs": batch["image"], "data_samples": data_samples}


@METRICS.register_module()
class DepthMetric(BaseMetric):
    """delta1/2/3, AbsRel, SqRel, RMSE, RMSE_log, log10, SILog per image (Eigen crop, valid
    ``min_depth < gt < max_depth``), averaged over images; images without valid pixels are
    skipped and counted (``skipped``). Predictions are resized bilinearly to the ground truth."""

    default_prefix = ""

    def __init__(self, *, min_depth: float = 1e-3, max_depth: float = 10.0,
                 eigen_crop: bool = True, collect_device: str = "cpu",
                 prefix: str | None = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        self.min_depth, self.max_depth, self.eigen_crop = min_depth, max_depth, eigen_crop

    def process(self, data_batch: Any, data_samples: Sequence[dict]) -> None:
        for out in data_samples:
            if "gt_depth" not in out:
                raise ValueError("DepthMetric needs ground-truth depth in the samples")
            pred, gt = out["pred_depth"], out["gt_depth"]
            if pred.shape != gt.shape:
                pred = F.interpolate(pred[None, None], size=gt.shape, mode="bilinear",
                                     align_corners=False)[0, 0]
            self.results.append(depth_errors(pred, gt, self.min_depth, self.max_depth,
                                             self.eigen_crop))

    def compute_metrics(self, results: list) -> dict[str, float]:
        valid = [r for r in results if r is not None]
        skipped = len(results) - len(valid)
        if skipped:
            log.warning("DepthMetric: %d image(s) without valid ground truth skipped", skipped)
        if not valid:
            raise RuntimeError(f"DepthMetric: no image had valid ground truth ({skipped} "
                               "skipped): check depth units (metres) and min/max depth")
        out = {k: round(sum(r[k] for r in valid) / len(valid), 4) for k in METRIC_NAMES}
        out["skipped"] = skipped
        return out
