"""The parts of Mask R-CNN where torchvision and detectron2's ViTDet recipe differ, done the
ViTDet way (``detectron2/projects/ViTDet/configs/common/models/mask_rcnn_vitdet.py`` and the
detectron2 modules it names; facts, not code, taken from there).

- :class:`LevelRoIAlign`: the multi-scale pooler ``ROIAlignV2`` (``roi_align(aligned=True)``,
  sampling ratio 0), boxes assigned to levels as detectron2's ``assign_boxes_to_levels``:
  ``floor(4 + log2(sqrt(area) / 224 + 1e-8))`` clamped to the pyramid's levels.
- :class:`ViTDetRPN`: RPN losses as detectron2's ``StandardRPNHead`` + ``RPN``: box deltas with
  smooth-L1 of ``beta`` (ViTDet: 0, i.e. L1), both losses summed over the sampled anchors and
  divided by ``batch_size_per_image * num_images``.
- :class:`ViTDetRoIHeads`: box regression with smooth-L1 of ``beta`` (ViTDet: 0, L1) divided by
  the number of sampled RoIs; mask targets cut from the full-image masks with aligned RoIAlign
  and binarised at 0.5 (detectron2's ``BitMasks.crop_and_resize``); class-specific masks.
- :func:`paste_masks`: detectron2's pasting of (N, M, M) mask probabilities into the image, each
  output pixel centre sampled bilinearly at its position inside the (continuous) box.
- :func:`init_like_detectron2`: the predictor and head initialisations of detectron2.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models.detection.roi_heads import RoIHeads, maskrcnn_inference
from torchvision.models.detection.rpn import RegionProposalNetwork
from torchvision.ops import roi_align

__all__ = ["LevelRoIAlign", "ViTDetRPN", "ViTDetRoIHeads", "paste_masks", "init_like_detectron2"]

CANONICAL_BOX_SIZE = 224
CANONICAL_LEVEL = 4


def _rois(boxes: Sequence[torch.Tensor]) -> torch.Tensor:
    """Per-image (N_i, 4) boxes -> (sum N_i, 5) rows ``(image index, x0, y0, x1, y1)``."""
    index = [torch.full((len(b), 1), i, dtype=b.dtype, device=b.device)
             for i, b in enumerate(boxes)]
    return torch.cat([torch.cat(index), torch.cat(list(boxes))], dim=1)


def assign_levels(boxes: torch.Tensor, min_level: int, max_level: int) -> torch.Tensor:
    """boxes (R, 4) xyxy input pixels -> (R,) pyramid level index (0 = ``min_level``)."""
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    level = torch.floor(CANONICAL_LEVEL + torch.log2(area.sqrt() / CANONICAL_BOX_SIZE + 1e-8))
    return level.clamp(min_level, max_level).long() - min_level


class LevelRoIAlign(nn.Module):
    """Multi-scale aligned RoIAlign. ``levels``: feature names, finest first; ``strides``:
    their strides (powers of 2); ``output_size``: the pooled resolution.

    ``forward(features, boxes, image_shapes)``: ``{name: (B, C, h, w)}``, per-image (N_i, 4)
    boxes in input pixels -> (sum N_i, C, S, S), rows in the order of the boxes."""

    def __init__(self, levels: Sequence[str], strides: Sequence[int], output_size: int) -> None:
        super().__init__()
        logs = [math.log2(s) for s in strides]
        if any(v != int(v) for v in logs) or list(strides) != sorted(strides):
            raise ValueError(f"pooler strides {list(strides)} must be increasing powers of 2")
        self.levels, self.strides = list(levels), [int(s) for s in strides]
        self.min_level, self.max_level = int(logs[0]), int(logs[-1])
        self.output_size = (int(output_size), int(output_size))

    def forward(self, features: Mapping[str, torch.Tensor], boxes: Sequence[torch.Tensor],
                image_shapes: Sequence[tuple[int, int]] | None = None) -> torch.Tensor:
        rois = _rois(boxes)
        first = features[self.levels[0]]
        if len(self.levels) == 1:
            return self._pool(first, rois, self.strides[0])
        out = first.new_zeros((len(rois), first.shape[1], *self.output_size))
        level = assign_levels(rois[:, 1:], self.min_level, self.max_level)
        for i, (name, stride) in enumerate(zip(self.levels, self.strides, strict=True)):
            idx = torch.where(level == i)[0]
            if len(idx):
                out[idx] = self._pool(features[name], rois[idx], stride).to(out.dtype)
        return out

    def _pool(self, feature: torch.Tensor, rois: torch.Tensor, stride: int) -> torch.Tensor:
        return roi_align(feature, rois.to(feature.dtype), self.output_size,
                         spatial_scale=1.0 / stride, sampling_ratio=0, aligned=True)


class ViTDetRPN(RegionProposalNetwork):
    """torchvision's RPN (anchors, matching, sampling, proposals) with detectron2's losses;
    ``box_loss_beta``: smooth-L1 beta of the box deltas (0: L1, as ViTDet)."""

    def __init__(self, *args, box_loss_beta: float = 0.0, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.box_loss_beta = float(box_loss_beta)

    def compute_loss(self, objectness: torch.Tensor, pred_bbox_deltas: torch.Tensor,
                     labels: list[torch.Tensor], regression_targets: list[torch.Tensor]
                     ) -> tuple[torch.Tensor, torch.Tensor]:
        pos, neg = self.fg_bg_sampler(labels)
        pos = torch.where(torch.cat(pos))[0]
        sampled = torch.cat([pos, torch.where(torch.cat(neg))[0]])
        normalizer = self.fg_bg_sampler.batch_size_per_image * len(labels)
        targets = torch.cat(regression_targets)
        box_loss = _smooth_l1(pred_bbox_deltas[pos], targets[pos], self.box_loss_beta)
        objectness_loss = F.binary_cross_entropy_with_logits(
            objectness.flatten()[sampled], torch.cat(labels)[sampled], reduction="sum")
        return objectness_loss / normalizer, box_loss / normalizer


def _smooth_l1(x: torch.Tensor, y: torch.Tensor, beta: float) -> torch.Tensor:
    """Summed smooth-L1 (``beta`` 0: L1, as detectron2 defines it)."""
    if beta < 1e-5:
        return (x - y).abs().sum()
    return F.smooth_l1_loss(x, y, beta=beta, reduction="sum")


class ViTDetRoIHeads(RoIHeads):
    """torchvision's RoI heads (sampling, box coder, test-time filtering) with detectron2's box
    loss and mask targets; ``box_loss_beta`` as in :class:`ViTDetRPN`. ``forward`` has
    torchvision's signature and outputs: (detections, losses)."""

    def __init__(self, *args, box_loss_beta: float = 0.0, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.box_loss_beta = float(box_loss_beta)

    def forward(self, features: Mapping[str, torch.Tensor], proposals: list[torch.Tensor],
                image_shapes: list[tuple[int, int]],
                targets: list[dict[str, torch.Tensor]] | None = None
                ) -> tuple[list[dict[str, torch.Tensor]], dict[str, torch.Tensor]]:
        if not self.training:
            return self._detect(features, proposals, image_shapes), {}
        if targets is None:
            raise ValueError("RoI heads need targets in training mode")
        proposals, matched, labels, reg_targets = self.select_training_samples(proposals, targets)
        x = self.box_head(self.box_roi_pool(features, proposals, image_shapes))
        class_logits, box_deltas = self.box_predictor(x)
        losses = self._box_losses(class_logits, box_deltas, labels, reg_targets)
        if self.has_mask():
            losses["loss_mask"] = self._mask_loss(features, proposals, image_shapes, targets,
                                                  matched, labels)
        return [], losses

    def _box_losses(self, class_logits: torch.Tensor, box_deltas: torch.Tensor,
                    labels: list[torch.Tensor], reg_targets: list[torch.Tensor]
                    ) -> dict[str, torch.Tensor]:
        """class_logits (R, K+1), box_deltas (R, 4 (K+1)) -> cross-entropy (mean) and the
        class-specific box loss of the foreground RoIs divided by R."""
        labels_, targets = torch.cat(labels), torch.cat(reg_targets)
        pos = torch.where(labels_ > 0)[0]
        deltas = box_deltas.reshape(len(labels_), -1, 4)[pos, labels_[pos]]
        box_loss = _smooth_l1(deltas, targets[pos], self.box_loss_beta) / max(labels_.numel(), 1)
        return {"loss_classifier": F.cross_entropy(class_logits, labels_),
                "loss_box_reg": box_loss}

    def _mask_loss(self, features: Mapping[str, torch.Tensor], proposals: list[torch.Tensor],
                   image_shapes: list[tuple[int, int]], targets: list[dict[str, torch.Tensor]],
                   matched: list[torch.Tensor], labels: list[torch.Tensor]) -> torch.Tensor:
        """Mean binary cross-entropy of the foreground RoIs' class masks (R_fg, M, M)."""
        pos = [torch.where(lab > 0)[0] for lab in labels]
        boxes = [p[i] for p, i in zip(proposals, pos, strict=True)]
        logits = self._mask_logits(features, boxes, image_shapes)
        gt_labels = torch.cat([lab[i] for lab, i in zip(labels, pos, strict=True)])
        if gt_labels.numel() == 0:
            return logits.sum() * 0
        size = logits.shape[-1]
        gt = torch.cat([crop_masks(t["masks"][m[i]], b, size) for t, m, i, b in
                        zip(targets, matched, pos, boxes, strict=True)])
        logits = logits[torch.arange(len(gt_labels), device=logits.device), gt_labels]
        return F.binary_cross_entropy_with_logits(logits, gt.to(logits.dtype))

    def _mask_logits(self, features: Mapping[str, torch.Tensor], boxes: list[torch.Tensor],
                     image_shapes: list[tuple[int, int]]) -> torch.Tensor:
        return self.mask_predictor(self.mask_head(self.mask_roi_pool(features, boxes,
                                                                     image_shapes)))

    def _detect(self, features: Mapping[str, torch.Tensor], proposals: list[torch.Tensor],
                image_shapes: list[tuple[int, int]]) -> list[dict[str, torch.Tensor]]:
        x = self.box_head(self.box_roi_pool(features, proposals, image_shapes))
        class_logits, box_deltas = self.box_predictor(x)
        boxes, scores, labels = self.postprocess_detections(class_logits, box_deltas, proposals,
                                                            image_shapes)
        result = [{"boxes": b, "labels": lab, "scores": s}
                  for b, s, lab in zip(boxes, scores, labels, strict=True)]
        if self.has_mask():
            probs = maskrcnn_inference(self._mask_logits(features, boxes, image_shapes), labels)
            for r, p in zip(result, probs, strict=True):
                r["masks"] = p
        return result


def crop_masks(masks: torch.Tensor, boxes: torch.Tensor, size: int) -> torch.Tensor:
    """masks (N, H, W) bool/uint8, boxes (N, 4) xyxy pixels -> (N, size, size) bool: each mask
    cut to its box with aligned RoIAlign and thresholded at 0.5 (detectron2's targets)."""
    if len(boxes) == 0:
        return masks.new_zeros((0, size, size), dtype=torch.bool)
    rois = torch.cat([torch.arange(len(boxes), device=boxes.device)[:, None].to(boxes.dtype),
                      boxes], dim=1)
    cut = roi_align(masks[:, None].to(boxes.dtype), rois, (size, size), spatial_scale=1.0,
                    sampling_ratio=0, aligned=True)
    return cut[:, 0] >= 0.5


def paste_masks(masks: torch.Tensor, boxes: torch.Tensor, image_size: tuple[int, int],
                chunk: int = 32) -> torch.Tensor:
    """masks (N, 1, M, M) probabilities, boxes (N, 4) xyxy in the image's pixels -> (N, H, W)
    probabilities: pixel centre (x + 0.5, y + 0.5) read bilinearly from the mask at its relative
    position in the box, 0 outside (detectron2's ``paste_masks_in_image``)."""
    h, w = image_size
    out = masks.new_zeros((len(masks), h, w))
    ys = torch.arange(h, device=masks.device, dtype=masks.dtype) + 0.5
    xs = torch.arange(w, device=masks.device, dtype=masks.dtype) + 0.5
    for s in range(0, len(masks), chunk):
        b = boxes[s:s + chunk].to(masks.dtype)
        x0, y0, x1, y1 = (b[:, i, None] for i in range(4))
        gx = (xs[None] - x0) / (x1 - x0).clamp(min=1e-6) * 2 - 1   # (n, W)
        gy = (ys[None] - y0) / (y1 - y0).clamp(min=1e-6) * 2 - 1   # (n, H)
        grid = torch.stack([gx[:, None, :].expand(-1, h, -1),
                            gy[:, :, None].expand(-1, -1, w)], dim=-1)
        out[s:s + chunk] = F.grid_sample(masks[s:s + chunk], grid, align_corners=False)[:, 0]
    return out


def init_like_detectron2(box_head: nn.Module, box_predictor: nn.Module,
                         mask_head: nn.Module | None, mask_predictor: nn.Module | None) -> None:
    """detectron2's initialisation: head convs (and the mask deconv) MSRA fill (normal,
    fan_out), fully connected layers Xavier fill (uniform, a=1), class scores normal(0.01), box
    deltas normal(0.001), mask logits normal(0.001); biases 0."""
    for head in (box_head, mask_head):
        for m in (head.modules() if head is not None else ()):
            if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.Linear):
                nn.init.kaiming_uniform_(m.weight, a=1)
            if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)) and m.bias is not None:
                nn.init.zeros_(m.bias)
    _normal(box_predictor.cls_score, 0.01)
    _normal(box_predictor.bbox_pred, 0.001)
    if mask_predictor is not None:
        for m in mask_predictor.modules():
            if isinstance(m, nn.ConvTranspose2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                nn.init.zeros_(m.bias)
        _normal(mask_predictor.mask_fcn_logits, 0.001)


def _normal(layer: nn.Module, std: float) -> None:
    nn.init.normal_(layer.weight, std=std)
    nn.init.zeros_(layer.bias)
