"""Semantic-segmentation heads (``docs/dense_protocols.md`` section 2).

All heads take a list of feature maps ``[(B, C_i, h_i, w_i), ...]`` and return class logits
``(B, num_classes, h, w)`` at the resolution of the first (finest) map; the task wrapper
(:class:`pe_dense.tasks.segmentation.model.Segmentor`) resizes them to the image.

- :class:`LinearHead`: the frozen-feature linear probe of DINOv2 / PE: BatchNorm + 1x1 conv on
  the channel-concatenation of the maps (one map: last layer; four maps: "last-4 concat").
- :class:`LinearConvHead`: the PE paper's "linear layer and convolutional layer" probe. The
  official head was not released; this is BN + 1x1 conv (linear) + BN/ReLU + 3x3 conv.
- :class:`UPerHead`: UPerNet (pyramid pooling on the coarsest level + FPN fusion) for
  fine-tuning on a feature pyramid (:mod:`pe_dense.necks.pyramid`), maps finest first.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["LinearHead", "LinearConvHead", "UPerHead", "concat_resized"]


def concat_resized(maps: Sequence[torch.Tensor]) -> torch.Tensor:
    """Resize every map to the first one's size (bilinear) and concatenate channels."""
    size = maps[0].shape[-2:]
    return torch.cat([m if m.shape[-2:] == size else
                      F.interpolate(m, size=size, mode="bilinear", align_corners=False)
                      for m in maps], dim=1)


def _check_channels(maps: Sequence[torch.Tensor], expected: int, head: str) -> None:
    got = sum(m.shape[1] for m in maps)
    if got != expected:
        raise ValueError(f"{head} was built for {expected} input channels but received "
                         f"{len(maps)} map(s) with {got} channels in total: set in_channels to "
                         "embed_dim x number of layers")


class LinearHead(nn.Module):
    """BN + dropout + 1x1 conv over concatenated maps.

    ``in_channels``: total channels after concatenation (e.g. ``embed_dim`` for the last layer,
    ``4 * embed_dim`` for the last-4 concat). ``forward(maps)``: list of (B, C_i, h, w) ->
    (B, num_classes, h, w).
    """

    def __init__(self, *, in_channels: int, num_classes: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.num_classes = num_classes
        self.bn = nn.BatchNorm2d(in_channels)
        self.dropout = nn.Dropout2d(dropout) if dropout > 0 else nn.Identity()
        self.classifier = nn.Conv2d(in_channels, num_classes, kernel_size=1)
        nn.init.normal_(self.classifier.weight, std=0.01)
        nn.init.zeros_(self.classifier.bias)

    def forward(self, maps: Sequence[torch.Tensor]) -> torch.Tensor:
        _check_channels(maps, self.in_channels, type(self).__name__)
        return self.classifier(self.dropout(self.bn(concat_resized(maps))))


class LinearConvHead(nn.Module):
    """BN + 1x1 conv (``channels``) + BN + ReLU + 3x3 conv to the classes.

    Same inputs and output as :class:`LinearHead`; the 3x3 conv lets each pixel's class use
    its neighbours (the paper's linear + conv probe on frozen features).
    """

    def __init__(self, *, in_channels: int, num_classes: int, channels: int = 512,
                 dropout: float = 0.0) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.num_classes = num_classes
        self.linear = nn.Sequential(nn.BatchNorm2d(in_channels),
                                    nn.Conv2d(in_channels, channels, kernel_size=1))
        self.conv = nn.Sequential(
            nn.BatchNorm2d(channels), nn.ReLU(inplace=True),
            nn.Dropout2d(dropout) if dropout > 0 else nn.Identity(),
            nn.Conv2d(channels, num_classes, kernel_size=3, padding=1),
        )

    def forward(self, maps: Sequence[torch.Tensor]) -> torch.Tensor:
        _check_channels(maps, self.in_channels, type(self).__name__)
        return self.conv(self.linear(concat_resized(maps)))


def _conv_bn_relu(cin: int, cout: int, kernel: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, kernel, padding=kernel // 2, bias=False),
                         nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class UPerHead(nn.Module):
    """UPerNet decoder (Xiao et al. 2018): pyramid pooling on the coarsest map, top-down FPN
    fusion, concatenation of all levels at the finest resolution, 3x3 conv, classifier.

    ``in_channels``: channels of each input map, finest first (e.g. ``[256] * 4`` for pyramid
    levels p2..p5). ``forward(maps)``: list of (B, C_i, h_i, w_i), strides increasing ->
    (B, num_classes, h_0, w_0).
    """

    def __init__(self, *, in_channels: Sequence[int], num_classes: int, channels: int = 512,
                 pool_scales: Sequence[int] = (1, 2, 3, 6), dropout: float = 0.1) -> None:
        super().__init__()
        self.in_channels = list(in_channels)
        self.num_classes = num_classes
        top = self.in_channels[-1]
        self.ppm = nn.ModuleList(
            nn.Sequential(nn.AdaptiveAvgPool2d(s), _conv_bn_relu(top, channels, 1))
            for s in pool_scales)
        self.bottleneck = _conv_bn_relu(top + len(pool_scales) * channels, channels, 3)
        self.lateral = nn.ModuleList(_conv_bn_relu(c, channels, 1) for c in self.in_channels[:-1])
        self.fpn = nn.ModuleList(_conv_bn_relu(channels, channels, 3)
                                 for _ in self.in_channels[:-1])
        self.fuse = _conv_bn_relu(len(self.in_channels) * channels, channels, 3)
        self.dropout = nn.Dropout2d(dropout) if dropout > 0 else nn.Identity()
        self.classifier = nn.Conv2d(channels, num_classes, kernel_size=1)

    def _pyramid_pool(self, x: torch.Tensor) -> torch.Tensor:
        pooled = [F.interpolate(p(x), size=x.shape[-2:], mode="bilinear", align_corners=False)
                  for p in self.ppm]
        return self.bottleneck(torch.cat([x, *pooled], dim=1))

    def forward(self, maps: Sequence[torch.Tensor]) -> torch.Tensor:
        if len(maps) != len(self.in_channels):
            raise ValueError(f"UPerHead expects {len(self.in_channels)} maps (finest first), "
                             f"got {len(maps)}")
        laterals = [conv(m) for conv, m in zip(self.lateral, maps[:-1], strict=True)]
        laterals.append(self._pyramid_pool(maps[-1]))
        for i in range(len(laterals) - 1, 0, -1):  # top-down
            laterals[i - 1] = laterals[i - 1] + F.interpolate(
                laterals[i], size=laterals[i - 1].shape[-2:], mode="bilinear",
                align_corners=False)
        outs = [conv(x) for conv, x in zip(self.fpn, laterals[:-1], strict=True)]
        outs.append(laterals[-1])
        fused = self.fuse(concat_resized(outs))
        return self.classifier(self.dropout(fused))
