"""``create_backbone``: a PE variant by name, with overrides and optional weights."""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from dataclasses import asdict, fields
from typing import Any

from pe_dense.backbone.contract import Backbone
from pe_dense.backbone.pe_vit import PEViT
from pe_dense.backbone.variants import get_variant
from pe_dense.backbone.weights import load_weights

__all__ = ["create_backbone", "build_backbone", "backbone_kwargs", "describe_backbone",
           "TIMM_PREFIX"]

TIMM_PREFIX = "timm/"


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
                    **overrides: Any) -> Backbone:
    """Build backbone ``name`` and optionally load weights: any encoder under the backbone
    contract (:class:`~pe_dense.backbone.contract.Backbone`).

    ``name``: a PE variant (see :func:`pe_dense.list_models`), or ``timm/<model name>`` for
    any timm ViT family (``timm/vit_small_patch16_dinov3``, ``timm/vit_base_patch14_dinov2``,
    ``timm/naflexvit_base_patch16_radio_v3``, ...; :mod:`pe_dense.backbone.timm_adapter`).

    ``weights``: None (random init), a local checkpoint path, ``hf://owner/repo[:file]``
    (e.g. ``hf://facebook/PE-Spatial-B16-512``) or a state dict, in any layout
    :mod:`pe_dense.backbone.weights` reads (timm models: timm's layout, or ``hf-hub:...`` as
    the name). ``overrides`` are :class:`PEViT` keyword arguments, e.g. ``window_size=32,
    global_blocks=(2, 5, 8, 11), drop_path=0.1`` (timm models: ``timm.create_model``
    arguments); a variant's ViTDet detection backbone is ``create_backbone(**vitdet_backbone(
    name))`` (:func:`pe_dense.backbone.variants.vitdet_backbone`).
    """
    if name.startswith(TIMM_PREFIX):
        from pe_dense.backbone.timm_adapter import TimmBackbone, load_timm_weights

        if "drop_path" in overrides:  # our spelling; timm's is drop_path_rate
            overrides["drop_path_rate"] = overrides.pop("drop_path")
        model: Backbone = TimmBackbone(name[len(TIMM_PREFIX):], **overrides)
        if weights is not None:
            load_timm_weights(model, weights, strict=strict)
        return model
    model = PEViT(**backbone_kwargs(name, overrides))
    model.name = name
    if weights is not None:
        load_weights(model, weights, strict=strict)
    return model


def build_backbone(backbone: Backbone | Mapping[str, Any]) -> Backbone:
    """A backbone as given, or built by ``create_backbone(**backbone)`` from a dict such as
    ``{"name": "PE-Spatial-B16-512", "weights": None, "image_size": 1024, "window_size": 14}``
    or ``{"name": "timm/vit_small_patch16_dinov3"}``: what every model's ``backbone=`` takes."""
    if isinstance(backbone, Backbone):
        return backbone
    if not isinstance(backbone, Mapping) or "name" not in backbone:
        raise ValueError("backbone must be a Backbone or a dict of create_backbone arguments "
                         f"with a 'name' (e.g. {{'name': 'PE-Spatial-B16-512'}} or "
                         f"{{'name': 'timm/vit_small_patch16_dinov3'}}), got {backbone!r}")
    return create_backbone(**dict(backbone))


def describe_backbone(name: str, **overrides: Any) -> dict[str, Any]:
    """``patch_size``, ``embed_dim``, ``num_layers`` and ``layer_scale`` (whether its blocks
    have LayerScale) of backbone ``name`` without allocating it (PE: from the variant table;
    others: built on the ``meta`` device)."""
    if not name.startswith(TIMM_PREFIX):
        cfg = get_variant(name)
        return {"patch_size": overrides.get("patch_size", cfg.patch_size),
                "embed_dim": cfg.width, "num_layers": cfg.layers,
                "layer_scale": cfg.ls_init_value is not None}
    import torch

    with torch.device("meta"):
        model = create_backbone(name, **overrides)
    return {"patch_size": model.patch_size, "embed_dim": model.embed_dim,
            "num_layers": model.num_layers, "layer_scale": False}
