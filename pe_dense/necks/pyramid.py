"""Feature pyramids on a PE backbone: ViTDet's simple feature pyramid and a multi-layer variant.

Both take any backbone (:class:`~pe_dense.backbone.contract.Backbone`, or the keyword arguments of
:func:`pe_dense.create_backbone`), read it through ``forward_intermediates`` and return a dict of
maps named by stride: ``p2`` (stride 4) ... ``p6`` (stride 64) for a patch-16 backbone.

- :class:`SimpleFeaturePyramid`: one backbone map (the last block by default) rescaled by
  ``scale_factors`` (4, 2, 1, 0.5) with transposed convs / max-pool, then a 1x1 and a 3x3 conv
  with channels-first LayerNorm; ``p6`` by a stride-2 max-pool of the coarsest level.
- :class:`MultiLayerPyramid`: the same per-level layers, but each level reads its own block
  (e.g. blocks 2, 5, 8, 11), which suits a frozen backbone.

Inputs arrive padded (once, by the collate: :func:`pe_dense.data.collate.pad_images`) to a
multiple of the coarsest stride (:attr:`size_divisibility`); the pyramid checks this and never
pads. Strides must be powers of two, so patch-14 variants need ``patch_size=16`` (the official
detection configs resample ``conv1`` 14 -> 16; see ``pe_dense.backbone.weights``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from pe_dense.backbone.contract import Backbone, one_indices
from pe_dense.backbone.factory import build_backbone
from pe_dense.utils.modules import freeze

__all__ = ["LayerNorm2d", "SimpleFeaturePyramid", "MultiLayerPyramid"]

BackboneSpec = Backbone | Mapping[str, Any]


class LayerNorm2d(nn.Module):
    """LayerNorm over the channels of a (B, C, H, W) map."""

    def __init__(self, channels: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.layer_norm(x.permute(0, 2, 3, 1), x.shape[1:2], self.weight, self.bias, self.eps)
        return x.permute(0, 3, 1, 2)


def _norm(kind: str, channels: int) -> nn.Module:
    if kind == "LN":
        return LayerNorm2d(channels)
    if kind == "":
        return nn.Identity()
    raise ValueError(f"norm={kind!r} is not supported; use 'LN' or '' (none)")


def _rescale(scale: float, dim: int, norm: str) -> tuple[nn.Module, int]:
    """Layers resampling a (B, dim, h, w) map by ``scale``; returns them and the output width."""
    if scale == 4.0:
        layers = [nn.ConvTranspose2d(dim, dim // 2, 2, stride=2), _norm(norm, dim // 2),
                  nn.GELU(), nn.ConvTranspose2d(dim // 2, dim // 4, 2, stride=2)]
        return nn.Sequential(*layers), dim // 4
    if scale == 2.0:
        return nn.ConvTranspose2d(dim, dim // 2, 2, stride=2), dim // 2
    if scale == 1.0:
        return nn.Identity(), dim
    if scale == 0.5:
        return nn.MaxPool2d(2, stride=2), dim
    raise ValueError(f"scale factor {scale} is not supported; use 4.0, 2.0, 1.0 or 0.5")


class _PyramidLevels(nn.Module):
    """Shared machinery: per-level rescale + 1x1/3x3 convs, level names, p6 and the input check."""

    def __init__(self, backbone: BackboneSpec, scale_factors: Sequence[float], out_channels: int,
                 norm: str, top_block: bool, square_pad: int, freeze_backbone: bool) -> None:
        super().__init__()
        self.backbone = build_backbone(backbone)
        self.out_channels = out_channels
        self.square_pad = int(square_pad or 0)
        self.freeze_backbone = freeze_backbone
        self.scale_factors = tuple(float(s) for s in scale_factors)
        self.strides: dict[str, int] = {}
        self.stages = nn.ModuleDict()
        for scale in self.scale_factors:
            name, stride, stage = self._stage(scale, out_channels, norm)
            self.stages[name] = stage
            self.strides[name] = stride
        if top_block:
            last = max(self.strides, key=self.strides.get)
            self.strides[f"p{int(last[1:]) + 1}"] = self.strides[last] * 2
        self.top_block = top_block
        if self.square_pad and self.square_pad % self.size_divisibility:
            raise ValueError(f"square_pad={self.square_pad} is not a multiple of the coarsest "
                             f"stride {self.size_divisibility}")
        if freeze_backbone:
            freeze(self.backbone)

    def _stage(self, scale: float, out_channels: int, norm: str) -> tuple[str, int, nn.Module]:
        """(level name, stride, layers) of the level at ``scale`` x the patch grid."""
        patch, dim = self.backbone.patch_size, self.backbone.embed_dim
        stride = patch / scale
        level = math.log2(stride)
        if not level.is_integer():
            raise ValueError(
                f"patch size {patch} with scale {scale} gives stride {stride}, not a power "
                "of two; build the backbone with patch_size=16 (weights of patch-14 models "
                "are resampled by pe-dense convert --to detectron2 --patch-size 16)")
        rescale, width = _rescale(scale, dim, norm)
        stage = nn.Sequential(
            rescale,
            nn.Conv2d(width, out_channels, 1, bias=not norm), _norm(norm, out_channels),
            nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=not norm),
            _norm(norm, out_channels),
        )
        return f"p{int(level)}", int(stride), stage

    def output_shape(self) -> dict[str, tuple[int, int]]:
        """Level name -> (channels, stride), finest first, e.g. ``{"p2": (256, 4), ...}``."""
        return {name: (self.out_channels, s) for name, s in self.strides.items()}

    @property
    def size_divisibility(self) -> int:
        """Input height and width must be multiples of this (the coarsest stride)."""
        return max(self.strides.values())

    def check_input(self, x: torch.Tensor) -> None:
        """Raise a ``ValueError`` saying how to pad the batch unless x (B, 3, H, W) has H and W
        multiples of :attr:`size_divisibility` (and equal to ``square_pad`` when that is set)."""
        h, w = x.shape[-2], x.shape[-1]  # no int(): it would fix a traced (dynamic) size
        d = self.size_divisibility
        if h % d or w % d:
            nh, nw = math.ceil(h / d) * d, math.ceil(w / d) * d
            raise ValueError(
                f"input {h}x{w} is not a multiple of the pyramid's coarsest stride {d} (nearest "
                f"valid {nh}x{nw}); the model does not pad: pad the batch once in the collate, "
                f"collate_fn=dict(type='pe_dense.detection_collate', size_divisor={d}) or "
                f"square_size=N (a multiple of {d}), i.e. pe_dense.data.collate.pad_images")
        if self.square_pad and (h, w) != (self.square_pad, self.square_pad):
            raise ValueError(
                f"input {h}x{w} is not the square_pad={self.square_pad} square that the pyramid "
                f"was configured for; padding now happens in the collate: set collate_fn=dict("
                f"type='pe_dense.detection_collate', square_size={self.square_pad}) and drop "
                "square_pad from the pyramid config")

    def _intermediates(self, x: torch.Tensor, indices: list[int]) -> list[torch.Tensor]:
        self.check_input(x)
        if self.freeze_backbone:
            with torch.no_grad():
                return self.backbone.forward_intermediates(x, indices)
        return self.backbone.forward_intermediates(x, indices)

    def _levels(self, maps: list[torch.Tensor]) -> dict[str, torch.Tensor]:
        out = {name: stage(m) for (name, stage), m in zip(self.stages.items(), maps, strict=True)}
        if self.top_block:
            last = list(out)[-1]
            out[f"p{int(last[1:]) + 1}"] = F.max_pool2d(out[last], kernel_size=1, stride=2)
        return out


class SimpleFeaturePyramid(_PyramidLevels):
    """ViTDet's simple feature pyramid on one backbone block.

    ``backbone``: a Backbone or ``create_backbone`` kwargs; ``indices``: the block read (0-based,
    -1 the last; ``in_index``, the older name, is accepted); ``square_pad``: only a check kept for
    older configs (inputs must then be exactly that square); padding is the collate's job.
    ``forward(x)``: x (B, 3, H, W) in [-1, 1], H and W multiples of :attr:`size_divisibility` (else
    a ``ValueError`` naming the collate option) -> dict level -> (B, out_channels, H/stride,
    W/stride).
    """

    def __init__(self, backbone: BackboneSpec, *, indices: int | Sequence[int] | None = None,
                 in_index: int | None = None, out_channels: int = 256,
                 scale_factors: Sequence[float] = (4.0, 2.0, 1.0, 0.5), norm: str = "LN",
                 top_block: bool = True, square_pad: int = 0,
                 freeze_backbone: bool = False) -> None:
        super().__init__(backbone, scale_factors, out_channels, norm, top_block, square_pad,
                         freeze_backbone)
        index = one_indices(indices, -1, "SimpleFeaturePyramid", in_index=in_index)
        if not isinstance(index, int):
            if len(index) != 1:
                raise ValueError(f"SimpleFeaturePyramid reads one block: indices={index}; use "
                                 "MultiLayerPyramid for several")
            index = int(index[0])
        self.indices = [index]
        self.in_index = index

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        (feat,) = self._intermediates(x, self.indices)
        return self._levels([feat] * len(self.stages))


class MultiLayerPyramid(_PyramidLevels):
    """A pyramid whose levels read different blocks, e.g. ``indices=(2, 5, 8, 11)`` for
    ``scale_factors=(4, 2, 1, 0.5)`` (finest level from the earliest block).

    Same arguments and outputs as :class:`SimpleFeaturePyramid`; ``freeze_backbone`` defaults
    to True (the backbone runs in eval mode without gradients).
    """

    def __init__(self, backbone: BackboneSpec, *, indices: Sequence[int],
                 out_channels: int = 256, scale_factors: Sequence[float] = (4.0, 2.0, 1.0, 0.5),
                 norm: str = "LN", top_block: bool = True, square_pad: int = 0,
                 freeze_backbone: bool = True) -> None:
        if len(indices) != len(scale_factors):
            raise ValueError(f"indices {tuple(indices)} and scale_factors {tuple(scale_factors)} "
                             "must have the same length (one block per level)")
        super().__init__(backbone, scale_factors, out_channels, norm, top_block, square_pad,
                         freeze_backbone)
        self.indices = [int(i) for i in indices]

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return self._levels(self._intermediates(x, self.indices))
