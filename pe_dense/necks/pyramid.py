"""Feature pyramids on a PE backbone: ViTDet's simple feature pyramid and a multi-layer variant.

Both take a :class:`~pe_dense.backbone.pe_vit.PEViT` (or the keyword arguments of
:func:`pe_dense.create_backbone`), read it through ``forward_intermediates`` and return a dict of
maps named by stride: ``p2`` (stride 4) ... ``p6`` (stride 64) for a patch-16 backbone.

- :class:`SimpleFeaturePyramid`: one backbone map (the last block by default) rescaled by
  ``scale_factors`` (4, 2, 1, 0.5) with transposed convs / max-pool, then a 1x1 and a 3x3 conv
  with channels-first LayerNorm; ``p6`` by a stride-2 max-pool of the coarsest level.
- :class:`MultiLayerPyramid`: the same per-level layers, but each level reads its own block
  (e.g. blocks 2, 5, 8, 11), which suits a frozen backbone.

Strides must be powers of two, so patch-14 variants need ``patch_size=16`` (the official
detection configs resample ``conv1`` 14 -> 16; see ``pe_dense.backbone.weights``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from pe_dense.backbone.factory import create_backbone
from pe_dense.backbone.pe_vit import PEViT

__all__ = ["LayerNorm2d", "SimpleFeaturePyramid", "MultiLayerPyramid", "build_backbone"]

BackboneSpec = PEViT | Mapping[str, Any]


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


def build_backbone(backbone: BackboneSpec) -> PEViT:
    """A PEViT as given, or built by ``create_backbone(**backbone)`` from a dict such as
    ``{"name": "PE-Spatial-B16-512", "weights": None, "image_size": 1024, "window_size": 14}``."""
    if isinstance(backbone, nn.Module):
        return backbone
    if not isinstance(backbone, Mapping) or "name" not in backbone:
        raise ValueError("backbone must be a PEViT or a dict of create_backbone arguments with a "
                         f"'name' (e.g. {{'name': 'PE-Spatial-B16-512'}}), got {backbone!r}")
    return create_backbone(**dict(backbone))


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
    """Shared machinery: per-level rescale + 1x1/3x3 convs, level names, p6 and padding."""

    def __init__(self, backbone: BackboneSpec, scale_factors: Sequence[float], out_channels: int,
                 norm: str, top_block: bool, square_pad: int, freeze_backbone: bool) -> None:
        super().__init__()
        self.backbone = build_backbone(backbone)
        self.out_channels = out_channels
        self.square_pad = square_pad
        self.freeze_backbone = freeze_backbone
        patch = self.backbone.patch_size
        dim = self.backbone.embed_dim
        self.scale_factors = tuple(float(s) for s in scale_factors)
        self.strides: dict[str, int] = {}
        self.stages = nn.ModuleDict()
        for scale in self.scale_factors:
            stride = patch / scale
            level = math.log2(stride)
            if not level.is_integer():
                raise ValueError(
                    f"patch size {patch} with scale {scale} gives stride {stride}, not a power "
                    "of two; build the backbone with patch_size=16 (weights of patch-14 models "
                    "are resampled by pe-dense convert --to detectron2 --patch-size 16)")
            rescale, width = _rescale(scale, dim, norm)
            name = f"p{int(level)}"
            self.stages[name] = nn.Sequential(
                rescale,
                nn.Conv2d(width, out_channels, 1, bias=not norm), _norm(norm, out_channels),
                nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=not norm),
                _norm(norm, out_channels),
            )
            self.strides[name] = int(stride)
        if top_block:
            last = max(self.strides, key=self.strides.get)
            self.strides[f"p{int(last[1:]) + 1}"] = self.strides[last] * 2
        self.top_block = top_block
        if freeze_backbone:
            self.backbone.requires_grad_(False)

    def output_shape(self) -> dict[str, tuple[int, int]]:
        """Level name -> (channels, stride), finest first, e.g. ``{"p2": (256, 4), ...}``."""
        return {name: (self.out_channels, s) for name, s in self.strides.items()}

    @property
    def size_divisibility(self) -> int:
        """Inputs should be padded to a multiple of this (the coarsest stride)."""
        return max(self.strides.values())

    def padding_constraints(self) -> dict[str, int]:
        """``{"size_divisibility": ..., "square_size": square_pad}`` for batch padding."""
        return {"size_divisibility": self.size_divisibility, "square_size": self.square_pad}

    def train(self, mode: bool = True) -> _PyramidLevels:
        super().train(mode)
        if self.freeze_backbone:
            self.backbone.eval()
        return self

    def pad(self, x: torch.Tensor) -> torch.Tensor:
        """Zero-pad (B, 3, H, W) bottom/right to square_pad or a multiple of the coarsest stride."""
        h, w = x.shape[-2:]
        if self.square_pad:
            if h > self.square_pad or w > self.square_pad:
                raise ValueError(f"input {h}x{w} is larger than square_pad={self.square_pad}; "
                                 "resize images so the long side is at most square_pad")
            th = tw = self.square_pad
        else:
            d = self.size_divisibility
            th, tw = math.ceil(h / d) * d, math.ceil(w / d) * d
        return F.pad(x, (0, tw - w, 0, th - h)) if (th, tw) != (h, w) else x

    def _intermediates(self, x: torch.Tensor, indices: list[int]) -> list[torch.Tensor]:
        x = self.pad(x)
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
    """ViTDet's simple feature pyramid on one PEViT block.

    ``backbone``: a PEViT or ``create_backbone`` kwargs; ``in_index``: the block read (0-based,
    -1 the last); ``square_pad``: pad inputs (bottom/right, with 0 = the mean after PE
    normalisation) to this square size, e.g. 1024 as in the official configs, else to a multiple
    of the coarsest stride. ``forward(x)``: x (B, 3, H, W) in [-1, 1] -> dict level -> (B,
    out_channels, H'/stride, W'/stride) with H', W' the padded size.
    """

    def __init__(self, backbone: BackboneSpec, *, in_index: int = -1, out_channels: int = 256,
                 scale_factors: Sequence[float] = (4.0, 2.0, 1.0, 0.5), norm: str = "LN",
                 top_block: bool = True, square_pad: int = 0,
                 freeze_backbone: bool = False) -> None:
        super().__init__(backbone, scale_factors, out_channels, norm, top_block, square_pad,
                         freeze_backbone)
        self.in_index = in_index

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        (feat,) = self._intermediates(x, [self.in_index])
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
