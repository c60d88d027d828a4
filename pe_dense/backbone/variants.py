"""The PE vision-tower configuration table.

Names and field meanings follow the official ``core/vision_encoder/config.py``; the MLP hidden
size is stored as an integer (``mlp_width``) rather than a float ratio. Every field is a keyword
argument of :class:`pe_dense.backbone.pe_vit.PEViT`, so a variant builds with
``PEViT(**asdict(VARIANTS[name]))``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

__all__ = ["PEConfig", "VARIANTS", "get_variant", "list_models", "vitdet_global_blocks"]


@dataclass(frozen=True)
class PEConfig:
    """Architecture of one PE vision tower (see ``docs/pe_reference.md`` section 1.1)."""

    patch_size: int
    width: int
    layers: int
    heads: int
    mlp_width: int
    image_size: int
    output_dim: int | None = None
    ls_init_value: float | None = None
    use_cls_token: bool = False
    use_abs_posemb: bool = True
    use_rope2d: bool = True
    use_ln_pre: bool = True
    use_ln_post: bool = False
    pool_type: str = "none"
    attn_pooler_heads: int = 8


def _core(patch: int, width: int, layers: int, heads: int, mlp: int, img: int, out: int,
          cls: bool) -> PEConfig:
    return PEConfig(patch_size=patch, width=width, layers=layers, heads=heads, mlp_width=mlp,
                    image_size=img, output_dim=out, use_cls_token=cls, use_ln_post=True,
                    pool_type="attn")


def _features_only(core: PEConfig, **changes) -> PEConfig:
    """Lang and Spatial towers: the Core tower without ln_post, pooling and projection."""
    return replace(core, use_ln_post=False, pool_type="none", output_dim=None, **changes)


_CORE = {
    "PE-Core-G14-448": _core(14, 1536, 50, 16, 8960, 448, 1280, cls=False),
    "PE-Core-L14-336": _core(14, 1024, 24, 16, 4096, 336, 1024, cls=True),
    "PE-Core-B16-224": _core(16, 768, 12, 12, 3072, 224, 1024, cls=True),
    "PE-Core-S16-384": _core(16, 384, 12, 6, 1536, 384, 512, cls=True),
    "PE-Core-T16-384": _core(16, 192, 12, 3, 768, 384, 512, cls=True),
}

_LANG = {
    "PE-Lang-G14-448": _features_only(_CORE["PE-Core-G14-448"], ls_init_value=0.1, layers=47),
    "PE-Lang-L14-448": _features_only(_CORE["PE-Core-L14-336"], image_size=448,
                                      ls_init_value=0.1, layers=23),
}
_LANG["PE-Lang-G14-448-Tiling"] = _LANG["PE-Lang-G14-448"]
_LANG["PE-Lang-L14-448-Tiling"] = _LANG["PE-Lang-L14-448"]

# "No layerscale on the smaller spatial models" (official config comment).
_SPATIAL = {
    "PE-Spatial-G14-448": _features_only(_CORE["PE-Core-G14-448"], ls_init_value=0.1),
    "PE-Spatial-L14-448": _features_only(_CORE["PE-Core-L14-336"], image_size=448),
    "PE-Spatial-B16-512": _features_only(_CORE["PE-Core-B16-224"], image_size=512),
    "PE-Spatial-S16-512": _features_only(_CORE["PE-Core-S16-384"], image_size=512),
    "PE-Spatial-T16-512": _features_only(_CORE["PE-Core-T16-384"], image_size=512),
}

# A few-layer tower with every feature of the small Spatial models, for tests and CPU configs.
_TEST = {
    "PE-Test": PEConfig(patch_size=16, width=64, layers=4, heads=4, mlp_width=128,
                        image_size=64, use_cls_token=True),
}

VARIANTS: dict[str, PEConfig] = {**_CORE, **_LANG, **_SPATIAL, **_TEST}


def list_models(pattern: str = "") -> list[str]:
    """Names of the known PE variants containing ``pattern`` (case-insensitive), in table order."""
    return [name for name in VARIANTS if pattern.lower() in name.lower()]


def get_variant(name: str) -> PEConfig:
    """The config of variant ``name``; a ``ValueError`` listing the known names otherwise."""
    if name not in VARIANTS:
        close = [n for n in VARIANTS if name.lower() in n.lower()]
        hint = f" Did you mean {close}?" if close else ""
        raise ValueError(f"unknown PE variant {name!r}.{hint} Known: {', '.join(VARIANTS)}")
    return VARIANTS[name]


def vitdet_global_blocks(layers: int) -> tuple[int, ...]:
    """Global-attention blocks of a ViTDet-style windowed backbone with ``layers`` blocks.

    The official PE-G detection configs use (12, 24, 36, 49); other depths use the ViTDet rule of
    the last block of each quarter (12 blocks -> (2, 5, 8, 11), 24 -> (5, 11, 17, 23)).
    """
    if layers == 50:
        return (12, 24, 36, 49)
    return tuple((k + 1) * layers // 4 - 1 for k in range(4))
