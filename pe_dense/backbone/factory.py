"""``create_backbone``: a PE variant by name, with overrides and optional weights."""

from __future__ import annotations

import inspect
from dataclasses import asdict, fields
from typing import Any

from pe_dense.backbone.pe_vit import PEViT
from pe_dense.backbone.variants import get_variant
from pe_dense.backbone.weights import load_weights

__all__ = ["create_backbone", "backbone_kwargs"]


def backbone_kwargs(name: str, overrides: dict[str, Any], also_accepted: tuple[str, ...] = (),
                    what: str = "backbone") -> dict[str, Any]:
    """The :class:`PEViT` keyword arguments of variant ``name`` with ``overrides`` applied.

    Unknown override names raise a ``ValueError`` listing what is accepted (``also_accepted``:
    extra names the caller handles itself, and ``what`` the caller's name, for the message).
    """
    allowed = set(inspect.signature(PEViT.__init__).parameters) - {"self"}
    unknown = sorted(set(overrides) - allowed)
    if unknown:
        variant_fields = {f.name for f in fields(get_variant(name))}
        extra = f" and {', '.join(also_accepted)}" if also_accepted else ""
        raise ValueError(f"unknown {what} option(s) {unknown}; PEViT accepts "
                         f"{sorted(allowed - variant_fields)}{extra} besides the variant fields "
                         f"{sorted(variant_fields)}")
    return {**asdict(get_variant(name)), **overrides}


def create_backbone(name: str, weights: Any = None, strict: bool = True,
                    **overrides: Any) -> PEViT:
    """Build variant ``name`` (see :func:`pe_dense.list_models`) and optionally load weights.

    ``weights``: None (random init), a local checkpoint path, ``hf://owner/repo[:file]``
    (e.g. ``hf://facebook/PE-Spatial-B16-512``) or a state dict, in any layout
    :mod:`pe_dense.backbone.weights` reads. ``overrides`` are :class:`PEViT` keyword arguments,
    e.g. ``window_size=32, global_blocks=(2, 5, 8, 11), drop_path=0.1``; a variant's ViTDet
    detection backbone is ``create_backbone(**vitdet_backbone(name))``
    (:func:`pe_dense.backbone.variants.vitdet_backbone`).
    """
    model = PEViT(**backbone_kwargs(name, overrides))
    if weights is not None:
        load_weights(model, weights, strict=strict)
    return model
