"""mmsegmentation integration: PE as a registered mmseg backbone (extra ``mmseg``).

The only module that imports mmseg. Configs load it with
``custom_imports = dict(imports=["pe_dense.integrations.mmseg"], allow_failed_imports=False)``;
importing it registers, in ``mmseg.registry.MODELS``:

- ``PEViTBackbone``: our :class:`~pe_dense.backbone.pe_vit.PEViT` (one implementation, the same
  parameters and numerics) returning a tuple of (B, C, H', W') maps from the blocks
  ``out_indices``, each optionally resized by a ``rescales`` factor (a parameter-free
  ``MultiLevelNeck``-style pyramid); ``frozen=True`` freezes it for linear probing.
- ``PELinearHead``: the linear-probe decode head (BatchNorm + 1x1 conv on the concatenated maps),
  registered only where ``mmseg.models`` imports (it needs mmcv's compiled ops).

This module imports without mmseg (nothing is registered then); :func:`register_mmseg_modules`
raises ImportError with install advice when mmseg is missing.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F

from pe_dense.backbone.factory import backbone_kwargs
from pe_dense.backbone.pe_vit import PEViT
from pe_dense.backbone.weights import load_weights
from pe_dense.utils.modules import freeze

__all__ = ["INSTALL_HINT", "PEViTBackbone", "register_mmseg_modules"]

log = logging.getLogger(__name__)

INSTALL_HINT = (
    "the mmsegmentation integration needs mmseg: pip install 'pe-dense[mmseg]'. mmseg 1.2.2 needs "
    "mmcv 2.1.0 with compiled ops, which has no wheel: install torch<=2.9, then "
    "MMCV_WITH_OPS=1 pip install --no-build-isolation mmcv==2.1.0 (about an hour on 2 cores)"
)


class PEViTBackbone(PEViT):
    """PEViT for mmseg: multi-level maps from chosen blocks, optional rescale and freezing.

    ``variant`` is a pe_dense variant name; other PEViT options (``drop_path``,
    ``window_size``, ``grad_checkpointing`` ...) pass through ``overrides``. Inputs
    (B, 3, H, W) must be normalised to [-1, 1] (data_preprocessor mean = std = 127.5); H and W
    are zero-padded up to a multiple of the patch size. ``forward`` returns a tuple with one
    (B, C, s * ceil(H/p), s * ceil(W/p)) map per entry of ``out_indices`` (block indices,
    negatives from the end), s the matching ``rescales`` factor (bilinear; default 1).
    """

    def __init__(self, variant: str = "PE-Spatial-B16-512", *,
                 out_indices: Sequence[int] = (-1,), rescales: Sequence[float] | None = None,
                 frozen: bool = False, norm: bool = False, weights: Any = None,
                 strict: bool = True, **overrides: Any) -> None:
        super().__init__(**_variant_options(variant, overrides))
        self.variant = variant
        self.out_indices = self.take_indices(list(out_indices))
        if rescales is not None and len(rescales) != len(self.out_indices):
            raise ValueError(f"rescales {list(rescales)} needs one factor per out_indices entry "
                             f"({len(self.out_indices)})")
        self.rescales = list(rescales) if rescales is not None else [1.0] * len(self.out_indices)
        self.norm = norm
        self.frozen = frozen
        if weights is not None:
            load_weights(self, weights, strict=strict)
        if frozen:  # no gradients, and eval mode (no drop path) even while the head trains
            freeze(self)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        p = self.patch_size
        pad_h, pad_w = -x.shape[-2] % p, -x.shape[-1] % p
        if pad_h or pad_w:
            x = F.pad(x, (0, pad_w, 0, pad_h))
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.frozen):
            maps = self.forward_intermediates(x, indices=self.out_indices, norm=self.norm)
        return tuple(m if s == 1 else F.interpolate(m, scale_factor=s, mode="bilinear",
                                                     align_corners=False)
                     for m, s in zip(maps, self.rescales, strict=True))


def _variant_options(variant: str, overrides: dict[str, Any]) -> dict[str, Any]:
    return backbone_kwargs(variant, overrides, also_accepted=(
        "out_indices", "rescales", "frozen", "norm", "weights"), what="PEViTBackbone")


def _linear_head_class(base: type) -> type:
    """PELinearHead on mmseg's BaseDecodeHead (built here so mmseg.models stays optional)."""
    from mmcv.cnn import build_norm_layer

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("input_transform", "resize_concat")
        base.__init__(self, **kwargs)
        if self.channels != self.in_channels:
            raise ValueError(f"PELinearHead: set channels={self.in_channels} (the concatenated "
                             f"input channels); got {self.channels}")
        norm_cfg = self.norm_cfg or dict(type="BN")
        self.bn = build_norm_layer(norm_cfg, self.in_channels)[1]

    def forward(self, inputs: Any) -> torch.Tensor:
        """inputs: the backbone maps; returns (B, num_classes, H', W') logits."""
        return self.cls_seg(self.bn(self._transform_inputs(inputs)))

    doc = ("Linear probe: BatchNorm (``norm_cfg``) + 1x1 conv over the ``resize_concat`` of "
           "``in_index`` maps (DINOv2's BNHead protocol).")
    return type("PELinearHead", (base,), {"__init__": __init__, "forward": forward,
                                          "__doc__": doc, "__module__": __name__})


def register_mmseg_modules() -> list[str]:
    """Register PEViTBackbone (and PELinearHead where mmseg.models imports) in mmseg's MODELS.

    Idempotent. Returns the registered names; raises ImportError with advice without mmseg.
    """
    try:
        from mmseg.registry import MODELS
    except ImportError as exc:
        raise ImportError(f"{INSTALL_HINT} ({type(exc).__name__}: {exc})") from exc
    MODELS.register_module(name="PEViTBackbone", module=PEViTBackbone, force=True)
    names = ["PEViTBackbone"]
    try:
        from mmseg.models.decode_heads.decode_head import BaseDecodeHead
    except ImportError as exc:
        log.debug("PELinearHead not registered: mmseg.models does not import (%s)", exc)
        return names
    if "PELinearHead" not in MODELS.module_dict:
        MODELS.register_module(name="PELinearHead", module=_linear_head_class(BaseDecodeHead))
    return names + ["PELinearHead"]


try:  # registration is the point of importing this module through custom_imports
    register_mmseg_modules()
except ImportError:
    log.debug("mmseg is not installed: PE modules were not registered")
