"""Put an exported model where the library expects PyTorch: :class:`SessionBackbone` is a
backbone under the contract (``forward_intermediates`` / ``forward_features`` /
``patch_size``) for the features command and the demo's features and track modes; :func:`bind_dense`
and
:func:`bind_encoder` make a task model's ``encode`` / ``decode`` stages run the session, so its
own ``predict`` / ``predict_images`` (pre- and post-processing in PyTorch) use the exported
network (each task's description says which one it uses: ``pe_dense.tasks.description``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F

from pe_dense.backbone.contract import Backbone
from pe_dense.runtime.session import InferenceSession

__all__ = ["SessionBackbone", "bind_dense", "bind_encoder"]

BACKBONE_KINDS = ("features", "intermediates")


class SessionBackbone(Backbone):
    """An exported backbone graph under the backbone contract (inference only: no blocks to
    train or shard). ``forward_intermediates(x, indices)`` answers for the blocks the graph was
    exported with (``pe-dense export ... --layers``), NCHW or NLC; ``normalize`` uses the
    normalisation the graph was exported with."""

    def __init__(self, session: InferenceSession) -> None:
        super().__init__()
        kind = session.spec.get("kind")
        if kind not in BACKBONE_KINDS:
            raise ValueError(f"{session.source} holds a {kind!r} graph, not a backbone: export "
                             "a PE variant (pe-dense export PE-Spatial-T16-512 --layers -1 ...)")
        self.session, self.kind = session, kind
        self.patch_size = int(session.spec["patch_size"])
        self.embed_dim = int(session.spec["embed_dim"])
        self.layers = [int(i) for i in session.spec.get("layers", [])]
        self.num_layers = max(self.layers) + 1
        self.num_prefix_tokens = 0
        self.name = str(session.spec.get("source") or session.source)
        self.input_mean = tuple(session.spec.get("input_mean", (0.5, 0.5, 0.5)))
        self.input_std = tuple(session.spec.get("input_std", (0.5, 0.5, 0.5)))

    def layer_id(self, name: str) -> int:
        return self.num_layers + 1  # nothing to train

    def blocks(self) -> list[torch.nn.Module]:
        return []

    def set_grad_checkpointing(self, enable: bool = True) -> None:
        raise ValueError(f"{self.name} is an exported graph: nothing to recompute in backward")

    def take_indices(self, indices: int | Sequence[int]) -> list[int]:
        """Exported block indices for ``indices`` (negatives count from the last exported
        block's model depth); a block that was not exported is a ``ValueError``."""
        wanted = [indices] if isinstance(indices, int) else list(indices)
        taken = [int(i) % self.num_layers for i in wanted]
        missing = [i for i in taken if i not in self.layers]
        if missing or self.kind != "intermediates":
            raise ValueError(f"{self.session.source} has blocks {self.layers} "
                             f"({self.kind}), not {wanted}: re-export with --layers "
                             f"{','.join(str(i) for i in wanted)}")
        return taken

    def forward_intermediates(self, x: torch.Tensor, indices: int | Sequence[int] = -1,
                              norm: bool = False, output_fmt: str = "NCHW"
                              ) -> list[torch.Tensor]:
        """x: (B, 3, H, W) in [-1, 1] -> maps (B, C, H/p, W/p) (or (B, HW/p^2, C) for NLC)."""
        if norm:
            raise ValueError("exported backbones hold the raw block outputs (norm=False)")
        taken = self.take_indices(indices)
        maps = dict(zip(self.layers, self.session(x), strict=True))
        out = [maps[i] for i in taken]
        return [m.flatten(2).transpose(1, 2) for m in out] if output_fmt == "NLC" else out

    def forward_features(self, x: torch.Tensor, layer: int = -1, norm: bool = False,
                         strip_cls: bool = False) -> torch.Tensor:
        """(B, T, C) tokens of block ``layer`` (see :meth:`forward_intermediates`)."""
        if self.kind == "features" and layer % self.num_layers == self.layers[0] and not norm:
            return self.session(x)[0]
        return self.forward_intermediates(x, [layer], norm, "NLC")[0]


def bind_dense(model: torch.nn.Module, session: InferenceSession) -> torch.nn.Module:
    """Make a dense model's stages run ``session`` (a graph of the whole network, one output):
    ``encode(x)`` runs it and ``decode(features, size)`` resizes its output (B, C, h, w) to
    ``size`` (a no-op at the input size); returns ``model``."""

    def encode_dense(x: torch.Tensor) -> list[torch.Tensor]:
        return session(x.float())

    def decode_dense(features: Any, image_size: tuple[int, int]) -> torch.Tensor:
        out = features[0]
        if tuple(out.shape[-2:]) != tuple(image_size):
            out = F.interpolate(out, size=tuple(image_size), mode="bilinear", align_corners=False)
        return out

    model.encode, model.decode = encode_dense, decode_dense
    return model


def bind_encoder(model: torch.nn.Module, session: InferenceSession) -> torch.nn.Module:
    """Make ``model.encode(x)`` return the session's outputs by name (a graph of the backbone
    and neck, e.g. a detector's pyramid maps p2..p6); the heads keep running in PyTorch."""
    names = session.output_names

    def encode_levels(x: torch.Tensor) -> dict[str, torch.Tensor]:
        return dict(zip(names, session(x.float()), strict=True))

    model.encode = encode_levels
    return model
