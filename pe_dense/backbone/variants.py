"""The PE vision-tower configuration table.

Names and field meanings follow the official ``core/vision_encoder/config.py``; the MLP hidden
size is stored as an integer (``mlp_width``) rather than a float ratio. Every field is a keyword
argument of :class:`pe_dense.backbone.pe_vit.PEViT`, so a variant builds with
``PEViT(**asdict(VARIANTS[name]))``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any

__all__ = [
    "PEConfig", "VARIANTS", "get_variant", "list_models", "vitdet_global_blocks", "ViTDetPreset",
    "VITDET_COMMON", "VITDET_PRESETS", "vitdet_preset", "vitdet_backbone", "default_layer_decay",
    "param_count",
]


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
    # "The paper in miniature" (tools/paper_in_miniature.py): a Core-like CLIP tower small
    # enough to train contrastively on 2 CPU cores; patch 8 at 96 px (a 12 x 12 grid) so
    # shapes of 14-40 px span several tokens, 8 blocks so the layer sweep has a curve.
    "PE-Mini": _core(8, 96, 8, 4, 384, 96, 64, cls=True),
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


def param_count(cfg: PEConfig) -> int:
    """Number of parameters of ``PEViT(**asdict(cfg))``, from the table alone (no torch).

    Per block: two LayerNorms, the qkv and output projections, the MLP, and LayerScale when set;
    around them the bias-free patch kernel, class token, position embedding, ln_pre/ln_post, the
    attention pool (probe, attention, LayerNorm, 4x MLP) and the output projection.
    """
    w, m = cfg.width, cfg.mlp_width
    attn = 3 * w * w + 3 * w + w * w + w
    block = 2 * 2 * w + attn + (w * m + m) + (m * w + w)
    block += 2 * w if cfg.ls_init_value is not None else 0
    total = cfg.layers * block + 3 * w * cfg.patch_size**2
    total += w if cfg.use_cls_token else 0
    if cfg.use_abs_posemb:
        total += ((cfg.image_size // cfg.patch_size) ** 2 + int(cfg.use_cls_token)) * w
    total += 2 * w * (int(cfg.use_ln_pre) + int(cfg.use_ln_post))
    if cfg.pool_type == "attn":
        total += w + attn + 2 * w + (w * 4 * w + 4 * w) + (4 * w * w + w)
    if cfg.output_dim is not None:
        total += w * cfg.output_dim
    return total


def vitdet_global_blocks(layers: int) -> tuple[int, ...]:
    """Global-attention blocks of a ViTDet-style windowed backbone with ``layers`` blocks.

    The official PE-G detection configs use (12, 24, 36, 49); other depths use the ViTDet rule of
    the last block of each quarter (12 blocks -> (2, 5, 8, 11), 24 -> (5, 11, 17, 23)).
    """
    if layers == 50:
        return (12, 24, 36, 49)
    return tuple((k + 1) * layers // 4 - 1 for k in range(4))


# ----------------------------------------------------------------------------- ViTDet presets

# Every ViTDet detector backbone runs at 1024 px with patch 16 (G/L: the 14x14 kernel resampled),
# the pretrained 32x32 position grid tiled and 32x32 windows (PE's "abswin"), RoPE positions
# interpolated to the pretrained grid.
VITDET_COMMON: dict[str, Any] = dict(image_size=1024, patch_size=16, pretrain_image_size=512,
                                     window_size=32, posemb_mode="tile", rope_mode="interpolate")


@dataclass(frozen=True)
class ViTDetPreset:
    """The depth-dependent detection settings of one variant (besides :data:`VITDET_COMMON`).

    ``layer_decay`` is the layer-wise lr decay of the optimizer (not a backbone option).
    """

    global_blocks: tuple[int, ...]
    drop_path: float
    layer_decay: float
    grad_checkpointing: bool = False


def _preset(name: str, drop_path: float, layer_decay: float, **extra: Any) -> ViTDetPreset:
    return ViTDetPreset(vitdet_global_blocks(VARIANTS[name].layers), drop_path, layer_decay,
                        **extra)


# PE's official G recipe (global blocks 12, 24, 36, 49; drop path 0.5; lr decay 0.9; activation
# checkpointing) and ViTDet's global-block spacing / drop path / decay for 12- and 24-block
# models (B: 0.1 / 0.7, L: 0.4 / 0.8); PE released a detection recipe for G only.
VITDET_PRESETS: dict[str, ViTDetPreset] = {
    "PE-Spatial-T16-512": _preset("PE-Spatial-T16-512", drop_path=0.1, layer_decay=0.7),
    "PE-Spatial-S16-512": _preset("PE-Spatial-S16-512", drop_path=0.1, layer_decay=0.7),
    "PE-Spatial-B16-512": _preset("PE-Spatial-B16-512", drop_path=0.1, layer_decay=0.7),
    "PE-Spatial-L14-448": _preset("PE-Spatial-L14-448", drop_path=0.4, layer_decay=0.8),
    "PE-Spatial-G14-448": _preset("PE-Spatial-G14-448", drop_path=0.5, layer_decay=0.9,
                                  grad_checkpointing=True),
}


def vitdet_preset(name: str) -> ViTDetPreset:
    """The ViTDet preset of variant ``name``; a ``ValueError`` listing the presets otherwise."""
    if name not in VITDET_PRESETS:
        raise ValueError(f"no ViTDet detection preset for {name!r}; presets exist for "
                         f"{', '.join(VITDET_PRESETS)} (or pass the backbone options yourself)")
    return VITDET_PRESETS[name]


def vitdet_backbone(name: str, **overrides: Any) -> dict[str, Any]:
    """``create_backbone`` keyword arguments (``name`` included) of the ViTDet detection backbone
    of variant ``name`` at 1024 px, with ``overrides`` applied (e.g. ``weights=...``)::

        create_backbone(**vitdet_backbone("PE-Spatial-B16-512", drop_path=0.2))
    """
    preset = asdict(vitdet_preset(name))
    del preset["layer_decay"]
    if not preset["grad_checkpointing"]:
        del preset["grad_checkpointing"]  # the PEViT default
    return {"name": name, **VITDET_COMMON, **preset, **overrides}


def default_layer_decay(num_layers: int) -> float:
    """The layer-wise lr decay of the ViTDet preset of this depth: 0.7 for 12 blocks (T/S/B),
    0.8 for 24 (L), 0.9 for 50 (G); the nearest depth's value for other models."""
    by_depth = {VARIANTS[name].layers: p.layer_decay for name, p in VITDET_PRESETS.items()}
    nearest = min(by_depth, key=lambda d: abs(d - num_layers))
    return by_depth[nearest]
