"""The backbone contract: what necks, task models, the tracker, distillation, the demo, export,
the runtime, the optimiser and FSDP may use of an encoder, and nothing more.

:class:`Backbone` is a small ``nn.Module`` base class. An encoder family implements it once
(``backbone.pe_vit`` for PE, ``backbone.timm_adapter`` for the timm ViT families) and
registers a name prefix with
:func:`pe_dense.backbone.factory.create_backbone`; every consumer is then written against this
class only.

What a backbone says about itself (attributes):

- ``patch_size`` (pixels), ``embed_dim`` (channels of its maps), ``num_layers`` (blocks),
  ``num_prefix_tokens`` (cls / register tokens in front of the patch tokens of
  :meth:`forward_features`);
- ``input_mean`` / ``input_std``: its own input normalisation, per RGB channel in [0, 1] units
  (PE: 0.5 / 0.5; the DINO family: ImageNet's), applied by :meth:`normalize`;
- ``supports_windowed``: whether it runs ViTDet windowed attention (``window_size`` /
  ``global_blocks`` options);
- ``name``: the name it was created with (``"PE-Spatial-T16-512"``, ``"timm/vit_small..."``).

What it does (methods): :meth:`normalize`, :meth:`take_indices` (the one block-index helper),
:meth:`forward_intermediates`, :meth:`forward_features`, :meth:`layer_id` (layer-wise lr decay),
:meth:`blocks` (FSDP units, activation checkpointing), :meth:`set_grad_checkpointing`,
:meth:`no_weight_decay`.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from pe_dense.backbone.inputs import normalize

__all__ = ["Backbone", "INDEX_ALIASES", "pop_indices", "one_indices"]

# The one name for "which blocks" is ``indices``; configs may still use these spellings.
INDEX_ALIASES = ("layers", "layer", "in_index", "out_indices")


def pop_indices(kwargs: dict, default: object = None, what: str = "") -> object:
    """Remove ``indices`` or one of its old spellings (:data:`INDEX_ALIASES`) from ``kwargs``
    and return its value (``default`` when none is given). Two spellings at once are a
    ``ValueError``."""
    given = [k for k in ("indices", *INDEX_ALIASES) if k in kwargs]
    if len(given) > 1:
        raise ValueError(f"{what or 'config'}: give the blocks once, as indices= (got "
                         f"{', '.join(given)})")
    return kwargs.pop(given[0]) if given else default


def one_indices(indices: object, default: object, what: str, **aliases: object) -> object:
    """The blocks given as ``indices`` or under one old spelling (``aliases``: name -> value,
    None when not given): ``default`` when none is, a ``ValueError`` naming both when two are."""
    given = {"indices": indices, **aliases}
    named = [k for k, v in given.items() if v is not None]
    if len(named) > 1:
        raise ValueError(f"{what}: give the blocks once, as indices= (got {', '.join(named)})")
    return given[named[0]] if named else default


class Backbone(nn.Module):
    """Base class of every encoder (see the module docstring). Subclasses set the attributes
    and implement :meth:`take_indices`, :meth:`forward_intermediates`,
    :meth:`forward_features`, :meth:`layer_id` and :meth:`blocks`."""

    name: str = ""
    patch_size: int
    embed_dim: int
    num_layers: int
    num_prefix_tokens: int = 0
    input_mean: tuple[float, float, float] = (0.5, 0.5, 0.5)
    input_std: tuple[float, float, float] = (0.5, 0.5, 0.5)
    supports_windowed: bool = False

    def normalize(self, images: torch.Tensor,
                  sizes: Sequence[tuple[int, int]] | None = None) -> torch.Tensor:
        """images: (B, 3, H, W) uint8 RGB -> (B, 3, H, W) float32 normalised with this
        backbone's ``input_mean`` / ``input_std``; pixels beyond each image's unpadded
        ``sizes`` (h, w) become 0 (the mean)."""
        return normalize(images, sizes, self.input_mean, self.input_std)

    def renormalize(self, x: torch.Tensor) -> torch.Tensor:
        """x: float images normalised as PE's (``uint8 / 127.5 - 1``, in [-1, 1]: the pixel
        space of distillation views) -> this backbone's normalisation (identity for PE)."""
        if tuple(self.input_mean) == (0.5,) * 3 and tuple(self.input_std) == (0.5,) * 3:
            return x
        mean = x.new_tensor(self.input_mean)[:, None, None]
        std = x.new_tensor(self.input_std)[:, None, None]
        return ((x + 1.0) * 0.5 - mean) / std

    def truncate(self, layer: int) -> Backbone:
        """Drop the blocks after block ``layer`` (e.g. for a frozen teacher); returns self."""
        raise NotImplementedError

    def export_state_dict(self) -> dict[str, torch.Tensor]:
        """The weights in the layout ``create_backbone(self.name, weights=...)`` reads."""
        return self.state_dict()

    def take_indices(self, indices: int | Sequence[int]) -> list[int]:
        """Block indices -> 0-based non-negative ones, in the given order: an int n is the
        last n blocks, a sequence holds indices (negatives from the end). ``ValueError``
        stating the valid range otherwise."""
        raise NotImplementedError

    def forward_intermediates(self, x: torch.Tensor, indices: int | Sequence[int] = 1,
                              norm: bool = False, output_fmt: str = "NCHW"
                              ) -> list[torch.Tensor]:
        """x: (B, 3, H, W) normalised, H and W multiples of ``patch_size`` -> patch-token
        maps after the blocks ``indices``, prefix tokens removed: (B, C, H/p, W/p) for
        ``"NCHW"``, (B, HW/p^2, C) for ``"NLC"``; ``norm`` applies the final norm."""
        raise NotImplementedError

    def forward_features(self, x: torch.Tensor, layer: int = -1, norm: bool = False,
                         strip_cls: bool = False) -> torch.Tensor:
        """Tokens after block ``layer``: (B, num_prefix_tokens + HW/p^2, C), prefix tokens
        first (none with ``strip_cls``)."""
        raise NotImplementedError

    def layer_id(self, name: str) -> int:
        """Depth of parameter ``name`` (relative to the backbone) for layer-wise lr decay:
        0 for the embedding, ``i + 1`` for block i, ``num_layers + 1`` after the blocks."""
        raise NotImplementedError

    def blocks(self) -> list[nn.Module]:
        """The transformer blocks in order (FSDP units, activation checkpointing)."""
        raise NotImplementedError

    def set_grad_checkpointing(self, enable: bool = True) -> None:
        """Recompute block activations in backward."""
        raise NotImplementedError

    def no_weight_decay(self) -> set[str]:
        """Parameter names (relative to the backbone) exempt from weight decay."""
        return set()
