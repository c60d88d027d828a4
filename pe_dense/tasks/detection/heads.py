"""Mask R-CNN heads built from torchvision's blocks, with ViTDet's choices as defaults.

- RPN head: ``conv_depth`` 3x3 convs (ViTDet: 2) then objectness / box-delta 1x1 convs.
- Box head: ``conv_dims`` 3x3 convs with LayerNorm then ``fc_dims`` fully connected layers
  (ViTDet: 4 convs of 256 + one fc of 1024); no convs gives torchvision's two-fc head.
- Mask head: ``conv_dims`` 3x3 convs with LayerNorm (4 x 256), then a 2x transposed conv and a
  1x1 class-wise mask predictor.
``norm="LN"`` (channels-first LayerNorm) or ``""`` (none, convs get biases).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from torch import nn
from torchvision.models.detection.faster_rcnn import (
    FastRCNNConvFCHead,
    FastRCNNPredictor,
    TwoMLPHead,
)
from torchvision.models.detection.mask_rcnn import MaskRCNNHeads, MaskRCNNPredictor
from torchvision.models.detection.rpn import RPNHead

from pe_dense.necks.pyramid import LayerNorm2d

__all__ = ["build_rpn_head", "build_box_head", "build_box_predictor", "build_mask_head",
           "build_mask_predictor"]


def _norm_layer(norm: str) -> Callable[[int], nn.Module] | None:
    if norm == "LN":
        return LayerNorm2d
    if norm == "":
        return None
    raise ValueError(f"norm={norm!r} is not supported; use 'LN' or '' (none)")


def build_rpn_head(in_channels: int, num_anchors: int, conv_depth: int = 2) -> nn.Module:
    """RPN head: per level (B, C, h, w) -> objectness (B, A, h, w), deltas (B, 4A, h, w)."""
    return RPNHead(in_channels, num_anchors, conv_depth=conv_depth)


def build_box_head(in_channels: int, resolution: int = 7,
                   conv_dims: Sequence[int] = (256, 256, 256, 256),
                   fc_dims: Sequence[int] = (1024,), norm: str = "LN") -> tuple[nn.Module, int]:
    """Box head on pooled RoIs (R, C, res, res) -> (R, fc_dims[-1]); returns (head, out_dim)."""
    if not fc_dims:
        raise ValueError("box head needs at least one fc layer (fc_dims)")
    if not conv_dims:
        if len(fc_dims) != 2 or fc_dims[0] != fc_dims[1]:
            raise ValueError("a box head without convs is torchvision's TwoMLPHead: fc_dims must "
                             "be two equal sizes, e.g. (1024, 1024)")
        return TwoMLPHead(in_channels * resolution**2, fc_dims[0]), fc_dims[0]
    head = FastRCNNConvFCHead((in_channels, resolution, resolution), list(conv_dims),
                              list(fc_dims), norm_layer=_norm_layer(norm))
    return head, fc_dims[-1]


def build_box_predictor(in_dim: int, num_classes: int) -> nn.Module:
    """(R, in_dim) -> class logits (R, num_classes + 1) and deltas (R, 4 (num_classes + 1))."""
    return FastRCNNPredictor(in_dim, num_classes + 1)


def build_mask_head(in_channels: int, conv_dims: Sequence[int] = (256, 256, 256, 256),
                    norm: str = "LN") -> nn.Module:
    """Mask head convs: pooled RoIs (R, C, 14, 14) -> (R, conv_dims[-1], 14, 14)."""
    if not conv_dims:
        raise ValueError("mask head needs at least one conv (conv_dims)")
    return MaskRCNNHeads(in_channels, list(conv_dims), dilation=1, norm_layer=_norm_layer(norm))


def build_mask_predictor(in_channels: int, num_classes: int) -> nn.Module:
    """(R, C, 14, 14) -> mask logits (R, num_classes + 1, 28, 28)."""
    return MaskRCNNPredictor(in_channels, in_channels, num_classes + 1)
