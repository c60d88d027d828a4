"""The networks ``pe-dense export`` writes for task models (a task's description picks one):
one tensor input ``x`` (B, 3, H, W) float in [-1, 1], a tuple of tensors out."""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["DenseGraph", "EncoderGraph"]


class DenseGraph(nn.Module):
    """``decode(encode(x), (H, W))``: the whole network of a dense model, one output at H x W
    (segmentation logits (B, K, H, W), depth in metres (B, 1, H, W))."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return (self.model.decode(self.model.encode(x), (x.shape[-2], x.shape[-1])),)


class EncoderGraph(nn.Module):
    """``encode(x)`` maps by name (e.g. a detector's pyramid p2..p6, each (B, C, H/s, W/s));
    the model's heads and post-processing stay in PyTorch."""

    def __init__(self, model: nn.Module, names: list[str]) -> None:
        super().__init__()
        self.model, self.names = model, names

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        levels = self.model.encode(x)
        return tuple(levels[k] for k in self.names)
