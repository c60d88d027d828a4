"""Monocular depth heads (``docs/dense_protocols.md`` section 3). Outputs are metres.

- :class:`DPTHead`: Dense Prediction Transformer decoder as in Depth Anything: per-layer
  readout + 1x1 projection, resampling to strides p/4, p/2, p, 2p, 3x3 convs to ``features``
  channels, four fusion blocks, and an output head up to the image size. Widths per model size
  follow Depth Anything (:data:`DPT_WIDTHS`), the four layers per variant follow Depth Anything
  V2 / the PE detection configs (:data:`DPT_LAYERS`).
- :class:`LinearBinsHead`: DINOv2's linear depth probe: BN + 1x1 conv to ``n_bins`` logits
  over uniformly spaced depth bins in [min_depth, max_depth], "linear" normalisation
  (``relu(logit) + 0.1``, divided by the sum), depth = expected bin centre.

Both take ``maps``, a list of (B, C, h, w) patch-feature maps, plus ``image_size`` (H, W) and
return (B, 1, H, W) depth in metres inside [min_depth, max_depth].
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["DPTHead", "LinearBinsHead", "DPT_WIDTHS", "DPT_LAYERS", "dpt_config"]

# Depth Anything widths: size -> (fusion features, per-layer projection channels).
# PE-Spatial-T has no Depth Anything counterpart and uses the ViT-S widths.
DPT_WIDTHS: dict[str, tuple[int, tuple[int, int, int, int]]] = {
    "T": (64, (48, 96, 192, 384)),
    "S": (64, (48, 96, 192, 384)),
    "B": (128, (96, 192, 384, 768)),
    "L": (256, (256, 512, 1024, 1024)),
    "G": (384, (1536, 1536, 1536, 1536)),
}
# Four blocks read per depth (Depth Anything V2 for 12 and 24 blocks; G: PE's global blocks).
DPT_LAYERS: dict[int, tuple[int, int, int, int]] = {
    12: (2, 5, 8, 11),
    24: (4, 11, 17, 23),
    50: (12, 24, 36, 49),
}


# Other encoders (timm/...): the size letter from the width (ViT-S 384, B 768, L 1024, ...).
WIDTH_SIZES = ((384, "S"), (768, "B"), (1024, "L"))


def dpt_config(variant: str, num_layers: int, embed_dim: int = 0) -> dict:
    """``{"features", "out_channels", "layers"}`` for a PE variant name such as
    ``PE-Spatial-B16-512`` (size letter after the family) and its block count; other
    encoders (``timm/...``) by their width ``embed_dim``."""
    size = variant.split("-")[-2][0] if variant.count("-") >= 2 else ""
    if not size and embed_dim:
        size = next((s for w, s in WIDTH_SIZES if embed_dim <= w), "G")
    features, out_channels = DPT_WIDTHS.get(size, DPT_WIDTHS["S"])
    layers = DPT_LAYERS.get(num_layers)
    if layers is None:  # evenly spaced, ending at the last block
        layers = tuple(round(num_layers * k / 4) - 1 for k in (1, 2, 3, 4))
    return {"features": features, "out_channels": out_channels, "layers": layers}


def depth_activation(x: torch.Tensor, kind: str, min_depth: float,
                     max_depth: float) -> torch.Tensor:
    """Map raw outputs to metres: ``sigmoid`` -> min + (max - min) sigmoid(x) (bounded both
    sides, as Depth Anything's metric head); ``relu`` -> clamp(relu(x) + min, max) (DINOv2)."""
    if kind == "sigmoid":
        return min_depth + (max_depth - min_depth) * torch.sigmoid(x)
    if kind == "relu":
        return (F.relu(x) + min_depth).clamp(max=max_depth)
    raise ValueError(f"activation={kind!r}: use 'sigmoid' or 'relu'")


class _ResidualUnit(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(F.relu(self.conv1(F.relu(x))))


class _FusionBlock(nn.Module):
    """Adds the skip (after a residual unit), refines, upsamples to ``size``, 1x1 conv."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.skip_unit = _ResidualUnit(channels)
        self.unit = _ResidualUnit(channels)
        self.out_conv = nn.Conv2d(channels, channels, 1)

    def forward(self, x: torch.Tensor, skip: torch.Tensor | None,
                size: tuple[int, int]) -> torch.Tensor:
        if skip is not None:
            x = x + self.skip_unit(skip)
        x = self.unit(x)
        x = F.interpolate(x, size=size, mode="bilinear", align_corners=True)
        return self.out_conv(x)


def _resample(scale: float, channels: int) -> nn.Module:
    if scale == 4:
        return nn.ConvTranspose2d(channels, channels, 4, stride=4)
    if scale == 2:
        return nn.ConvTranspose2d(channels, channels, 2, stride=2)
    if scale == 1:
        return nn.Identity()
    return nn.Conv2d(channels, channels, 3, stride=2, padding=1)


class DPTHead(nn.Module):
    """DPT decoder on four (B, embed_dim, h, w) maps (earliest block first).

    ``readout``: ``"ignore"`` (Depth Anything default), ``"project"`` (concatenate each token
    with the readout token, Linear(2C -> C) + GELU) or ``"add"``. The readout token is the
    prefix (cls) token when the caller passes ``readout_tokens`` (B, C) per map, otherwise the
    spatial mean of the map. ``forward(maps, image_size)`` -> (B, 1, H, W) metres.
    """

    def __init__(self, *, embed_dim: int, features: int = 256,
                 out_channels: Sequence[int] = (96, 192, 384, 768), readout: str = "project",
                 min_depth: float = 1e-3, max_depth: float = 10.0,
                 activation: str = "sigmoid") -> None:
        super().__init__()
        if readout not in ("ignore", "project", "add"):
            raise ValueError(f"readout={readout!r}: use 'ignore', 'project' or 'add'")
        if len(out_channels) != 4:
            raise ValueError(f"DPTHead needs 4 out_channels (one per layer), got {out_channels}")
        if not 0 <= min_depth < max_depth:
            raise ValueError(f"need 0 <= min_depth < max_depth, got {min_depth}, {max_depth}")
        depth_activation(torch.zeros(1), activation, min_depth, max_depth)  # validates the name
        self.embed_dim, self.readout = embed_dim, readout
        self.min_depth, self.max_depth, self.activation = min_depth, max_depth, activation
        if readout == "project":
            self.readout_proj = nn.ModuleList(
                nn.Sequential(nn.Linear(2 * embed_dim, embed_dim), nn.GELU()) for _ in range(4))
        self.projects = nn.ModuleList(nn.Conv2d(embed_dim, c, 1) for c in out_channels)
        self.resample = nn.ModuleList(_resample(s, c)
                                      for s, c in zip((4, 2, 1, 0.5), out_channels, strict=True))
        self.layer_rn = nn.ModuleList(nn.Conv2d(c, features, 3, padding=1, bias=False)
                                      for c in out_channels)
        self.fusion = nn.ModuleList(_FusionBlock(features) for _ in range(4))
        self.conv_out1 = nn.Conv2d(features, features // 2, 3, padding=1)
        self.conv_out2 = nn.Sequential(nn.Conv2d(features // 2, 32, 3, padding=1),
                                       nn.ReLU(inplace=True), nn.Conv2d(32, 1, 1))

    def _apply_readout(self, i: int, x: torch.Tensor, token: torch.Tensor | None) -> torch.Tensor:
        if self.readout == "ignore":
            return x
        b, c, h, w = x.shape
        token = x.mean(dim=(2, 3)) if token is None else token
        if self.readout == "add":
            return x + token[:, :, None, None]
        tokens = x.flatten(2).transpose(1, 2)  # (B, hw, C)
        tokens = torch.cat([tokens, token[:, None].expand(-1, h * w, -1)], dim=-1)
        return self.readout_proj[i](tokens).transpose(1, 2).reshape(b, c, h, w)

    def forward(self, maps: Sequence[torch.Tensor], image_size: tuple[int, int],
                readout_tokens: Sequence[torch.Tensor] | None = None) -> torch.Tensor:
        if len(maps) != 4:
            raise ValueError(f"DPTHead needs 4 feature maps, got {len(maps)}")
        if maps[0].shape[1] != self.embed_dim:
            raise ValueError(f"DPTHead built for embed_dim {self.embed_dim}, maps have "
                             f"{maps[0].shape[1]} channels")
        tokens = readout_tokens or [None] * 4
        feats = []
        for i, x in enumerate(maps):
            x = self.resample[i](self.projects[i](self._apply_readout(i, x, tokens[i])))
            feats.append(self.layer_rn[i](x))
        out = None
        for i in range(3, -1, -1):  # coarsest first
            size = feats[i - 1].shape[-2:] if i > 0 else tuple(2 * s for s in feats[0].shape[-2:])
            out = self.fusion[i](feats[i] if out is None else out,
                                 None if out is None else feats[i], size)
        out = self.conv_out1(out)
        out = F.interpolate(out, size=image_size, mode="bilinear", align_corners=True)
        return depth_activation(self.conv_out2(out), self.activation, self.min_depth,
                                self.max_depth)


class LinearBinsHead(nn.Module):
    """DINOv2's linear depth probe over ``n_bins`` uniform bins.

    ``in_channels``: channels after concatenating the maps (and, with ``readout=True``, the
    broadcast readout token per map, doubling them, as DINOv2's "cls token" input).
    ``forward(maps, image_size)`` -> (B, 1, H, W) metres; logits are upsampled by
    ``upsample`` before the expectation, then bilinearly to the image size.
    """

    def __init__(self, *, in_channels: int, n_bins: int = 256, min_depth: float = 1e-3,
                 max_depth: float = 10.0, readout: bool = False, upsample: int = 4) -> None:
        super().__init__()
        if n_bins < 2 or not 0 <= min_depth < max_depth:
            raise ValueError(f"need n_bins >= 2 and 0 <= min_depth < max_depth, got {n_bins}, "
                             f"{min_depth}, {max_depth}")
        self.in_channels, self.readout, self.upsample = in_channels, readout, upsample
        self.min_depth, self.max_depth = min_depth, max_depth
        self.bn = nn.BatchNorm2d(in_channels)
        self.classifier = nn.Conv2d(in_channels, n_bins, 1)
        self.register_buffer("bins", torch.linspace(min_depth, max_depth, n_bins),
                             persistent=False)

    def forward(self, maps: Sequence[torch.Tensor], image_size: tuple[int, int],
                readout_tokens: Sequence[torch.Tensor] | None = None) -> torch.Tensor:
        parts = []
        for i, x in enumerate(maps):
            parts.append(x)
            if self.readout:
                token = x.mean(dim=(2, 3)) if readout_tokens is None else readout_tokens[i]
                parts.append(token[:, :, None, None].expand_as(x))
        x = torch.cat(parts, dim=1)
        if x.shape[1] != self.in_channels:
            raise ValueError(f"LinearBinsHead built for {self.in_channels} channels, got "
                             f"{x.shape[1]} ({len(maps)} maps, readout={self.readout})")
        logits = self.classifier(self.bn(x))
        if self.upsample > 1:
            logits = F.interpolate(logits, scale_factor=self.upsample, mode="bilinear",
                                   align_corners=False)
        probs = F.relu(logits) + 0.1
        probs = probs / probs.sum(dim=1, keepdim=True)
        depth = torch.einsum("bkhw,k->bhw", probs, self.bins.to(probs.dtype))[:, None]
        depth = F.interpolate(depth, size=image_size, mode="bilinear", align_corners=False)
        return depth.clamp(self.min_depth, self.max_depth)
