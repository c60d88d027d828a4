"""What an exported graph computes: small ``nn.Module`` wrappers with one tensor input.

Every graph takes ``x``: (B, 3, H, W) float32 normalised as its backbone says (PE: in [-1, 1];
``input_mean`` / ``input_std`` of its :class:`GraphSpec`; the backbone's ``normalize``
of uint8 RGB), H and W multiples of ``size_divisor``, and returns a tuple of tensors:

- backbone ``features``: ``forward_features(x, layer)`` -> (B, T, C) tokens;
- backbone ``intermediates``: ``forward_intermediates(x, layers)`` -> one (B, C, H/p, W/p) map
  per layer;
- task models: what their task's description (``pe_dense.tasks.description``) says:
  segmentation ``decode(encode(x), (H, W))`` -> logits (B, K, H, W); depth -> metres
  (B, 1, H, W); detection ``encode(x)`` -> pyramid maps p2..p6 (the RPN / RoI heads and their
  post-processing stay in PyTorch: bind the session with
  :func:`pe_dense.tasks.description.bind_task`).

:class:`GraphSpec` is the metadata written next to the graph (ONNX ``metadata_props``, ``.pt2``
extra file) so the runtime knows what it holds.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import torch
from torch import nn

from pe_dense.backbone.contract import Backbone
from pe_dense.tasks.description import task_of

__all__ = ["GraphSpec", "backbone_graph", "task_graph"]


@dataclass
class GraphSpec:
    """``kind``: features | intermediates | segmentation | depth | detection; ``outputs``: the
    output names; ``layers``: block indices of a backbone graph; ``size_divisor``: H and W must
    be multiples of it; ``resolution``: the (H, W) it was exported at; ``dynamic``: H, W and the
    batch may differ from it; ``source``: variant or config name; ``int8``: quantised;
    ``input_mean`` / ``input_std``: the input normalisation (RGB in [0, 1] units)."""

    kind: str
    outputs: list[str]
    size_divisor: int
    patch_size: int
    embed_dim: int
    resolution: tuple[int, int] = (0, 0)
    layers: list[int] = field(default_factory=list)
    dynamic: bool = False
    source: str = ""
    int8: bool = False
    random_weights: bool = False
    input_mean: tuple[float, float, float] = (0.5, 0.5, 0.5)
    input_std: tuple[float, float, float] = (0.5, 0.5, 0.5)

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> GraphSpec:
        data = json.loads(text)
        data["resolution"] = tuple(data.get("resolution", (0, 0)))
        for key in ("input_mean", "input_std"):
            data[key] = tuple(data.get(key, (0.5, 0.5, 0.5)))
        return cls(**data)


class _Features(nn.Module):
    def __init__(self, backbone: Backbone, layer: int) -> None:
        super().__init__()
        self.backbone, self.layer = backbone, layer

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return (self.backbone.forward_features(x, layer=self.layer),)


class _Intermediates(nn.Module):
    def __init__(self, backbone: Backbone, layers: list[int]) -> None:
        super().__init__()
        self.backbone, self.layers = backbone, layers

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return tuple(self.backbone.forward_intermediates(x, indices=self.layers))


def backbone_graph(backbone: Backbone, layers: Sequence[int] | None = None,
                   source: str = "") -> tuple[nn.Module, GraphSpec]:
    """The graph of a Backbone: ``forward_features`` (last block's tokens) when ``layers`` is
    None, else ``forward_intermediates(x, layers)`` maps (NCHW)."""
    common = dict(size_divisor=backbone.patch_size, patch_size=backbone.patch_size,
                  embed_dim=backbone.embed_dim, source=source,
                  input_mean=tuple(backbone.input_mean), input_std=tuple(backbone.input_std))
    if layers is None:
        layer = backbone.num_layers - 1
        spec = GraphSpec("features", ["tokens"], layers=[layer], **common)
        return _Features(backbone, -1).eval(), spec
    taken = backbone.take_indices(list(layers))
    spec = GraphSpec("intermediates", [f"block{i}" for i in taken], layers=taken, **common)
    return _Intermediates(backbone, taken).eval(), spec


def task_graph(model: nn.Module, source: str = "") -> tuple[nn.Module, GraphSpec]:
    """The graph of a task model, as its task's description says (segmentation, depth: end
    to end; detection: backbone + pyramid). Raises ``ValueError`` for models without one."""
    desc = task_of(model, need=("graph",))
    vit = model.backbone
    divisor = int(getattr(model, "size_divisor", vit.patch_size))
    graph, outputs = desc.graph(model)
    return graph, GraphSpec(desc.name, list(outputs), size_divisor=divisor,
                            patch_size=vit.patch_size, embed_dim=vit.embed_dim, source=source,
                            input_mean=tuple(vit.input_mean), input_std=tuple(vit.input_std))
