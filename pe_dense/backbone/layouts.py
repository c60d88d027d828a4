"""Every PE checkpoint key layout, and the conversions between them (no file access here).

The canonical layout is the official one (``core/vision_encoder/pe.py`` names, 2-D
``positional_embedding``), which is also :class:`~pe_dense.backbone.pe_vit.PEViT`'s. Known
layouts:

- official: flat dicts, ``state_dict``/``weights``/``model`` wrappers, ``module.`` prefixes, full
  CLIP checkpoints (only ``visual.*`` is kept; the text tower is dropped);
- timm ``vit_pe_*``, also behind Hugging Face ``timm_model.`` /
  ``model.vision_tower.timm_model.`` or OpenCLIP ``visual.trunk.`` prefixes;
- detectron2: the official detection code's converted backbone files (``{"model": ...}``,
  official names, a 3-D position embedding, possibly a 16x16 ``conv1`` resampled from 14x14),
  and full detector checkpoints with ``backbone.net.*`` keys, RoPE buffers and no
  ``class_embedding``.
"""

from __future__ import annotations

import logging
import re
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from pe_dense.backbone.pe_vit import PEViT

__all__ = [
    "CheckpointError", "FORMATS", "StateDict", "unwrap_state_dict", "detect_format",
    "to_official", "official_to_timm", "timm_to_official", "official_to_detectron2",
    "adapt_detection_state_dict", "keep_unused_cls", "find_backbone", "to_detector_layout",
]

log = logging.getLogger(__name__)

StateDict = dict[str, torch.Tensor]
FORMATS = ("official", "timm", "detectron2")
DETECTOR_PREFIX = "backbone.net."


class CheckpointError(ValueError):
    """A file or object that is not a readable PE checkpoint."""


_WRAPPERS = ("state_dict", "weights", "model", "model_ema", "module")
# (official, timm) key patterns; "{i}" stands for a block index.
_TIMM_NAMES = [
    ("conv1.weight", "patch_embed.proj.weight"),
    ("class_embedding", "cls_token"),
    ("positional_embedding", "pos_embed"),
    ("ln_pre.", "norm_pre."),
    ("ln_post.", "norm."),
    ("transformer.resblocks.{i}.ln_1.", "blocks.{i}.norm1."),
    ("transformer.resblocks.{i}.ln_2.", "blocks.{i}.norm2."),
    ("transformer.resblocks.{i}.attn.in_proj_weight", "blocks.{i}.attn.qkv.weight"),
    ("transformer.resblocks.{i}.attn.in_proj_bias", "blocks.{i}.attn.qkv.bias"),
    ("transformer.resblocks.{i}.attn.out_proj.", "blocks.{i}.attn.proj."),
    ("transformer.resblocks.{i}.ls_1.gamma", "blocks.{i}.gamma_1"),
    ("transformer.resblocks.{i}.ls_2.gamma", "blocks.{i}.gamma_2"),
    ("transformer.resblocks.{i}.mlp.c_fc.", "blocks.{i}.mlp.fc1."),
    ("transformer.resblocks.{i}.mlp.c_proj.", "blocks.{i}.mlp.fc2."),
    ("attn_pool.probe", "attn_pool.latent"),
    ("attn_pool.attn.out_proj.", "attn_pool.proj."),
    ("attn_pool.layernorm.", "attn_pool.norm."),
    ("attn_pool.mlp.c_fc.", "attn_pool.mlp.fc1."),
    ("attn_pool.mlp.c_proj.", "attn_pool.mlp.fc2."),
]
_TIMM_PREFIXES = ("model.vision_tower.timm_model.", "timm_model.", "visual.trunk.")
_ROPE_BUFFER = re.compile(r"(^|\.)rope\w*\.freqs_")


def _rename(key: str, pairs: list[tuple[str, str]], forward: bool) -> str:
    """``key`` renamed by the first matching (official, timm) pattern pair, in the direction
    ``forward`` (official -> timm) or back; CheckpointError when no pair matches."""
    for official, timm in pairs:
        src, dst = (official, timm) if forward else (timm, official)
        pattern = "^" + re.escape(src).replace(r"\{i\}", r"(\d+)")
        m = re.match(pattern, key)
        if m:
            out = dst.replace("{i}", m.group(1)) if m.groups() else dst
            return out + key[m.end():]
    if forward:
        raise CheckpointError(f"no timm name for official key {key!r}")
    raise CheckpointError(f"unexpected timm key {key!r}: not a PE vision tower")


def _strip_prefix(sd: StateDict, prefix: str) -> StateDict:
    return {k[len(prefix):]: v for k, v in sd.items() if k.startswith(prefix)}


# ----------------------------------------------------------------------------- unwrapping

def unwrap_state_dict(obj: Any) -> tuple[StateDict, bool]:
    """The flat tensor dict of a checkpoint object and whether a ``model`` wrapper was seen.

    Strips wrapper dicts (``state_dict``, ``weights``, ``model``, ``model_ema``, ``module``),
    non-tensor entries (epoch, optimizer ...) and the ``module.`` prefix of DDP-saved keys.
    """
    if not isinstance(obj, dict):
        raise CheckpointError(f"expected a dict of tensors, got {type(obj).__name__}")
    saw_model = False
    while not any(isinstance(v, torch.Tensor) for v in obj.values()):
        inner = next((k for k in _WRAPPERS if isinstance(obj.get(k), dict)), None)
        if inner is None:
            raise CheckpointError(
                f"no tensors found; top-level keys are {sorted(obj)[:10]}. Expected a state dict, "
                f"possibly wrapped in one of {_WRAPPERS}")
        saw_model |= inner == "model"
        obj = obj[inner]
    return {k.removeprefix("module."): v for k, v in obj.items()
            if isinstance(v, torch.Tensor)}, saw_model


def detect_format(sd: StateDict) -> str:
    """``"timm"`` for timm/HF/OpenCLIP-trunk keys, ``"official"`` otherwise (d2 included)."""
    timm_key = any(k.endswith("patch_embed.proj.weight") for k in sd)
    return "timm" if timm_key else "official"


def to_official(obj: Any) -> tuple[StateDict, str]:
    """Any supported checkpoint object -> (official-layout state dict, source format name).

    Detection layouts lose their recomputable RoPE buffers and get a 2-D position embedding;
    the patch kernel keeps its size (see :func:`adapt_detection_state_dict` to resample it).
    """
    sd, saw_model = unwrap_state_dict(obj)
    if detect_format(sd) == "timm":
        prefix = next((p for p in _TIMM_PREFIXES if f"{p}patch_embed.proj.weight" in sd), "")
        return timm_to_official(_strip_prefix(sd, prefix)), "timm"
    fmt = "official"
    if any(k.startswith(DETECTOR_PREFIX) for k in sd):
        sd, fmt = _strip_prefix(sd, DETECTOR_PREFIX), "detectron2"
    elif any(k.startswith("visual.") for k in sd):
        sd = _strip_prefix(sd, "visual.")  # full CLIP checkpoint: drop the text tower
    pos = sd.get("positional_embedding")
    if pos is not None and pos.ndim == 3:
        fmt = "detectron2"
    if saw_model and fmt == "official":
        fmt = "detectron2"
    _drop_rope_and_squeeze(sd, "")
    return sd, fmt


# ----------------------------------------------------------------------------- timm

def official_to_timm(sd: StateDict) -> StateDict:
    """Official layout -> timm ``vit_pe_*`` layout (qkv split for the pool, proj -> head)."""
    out: StateDict = {}
    for key, value in sd.items():
        if key in ("attn_pool.attn.in_proj_weight", "attn_pool.attn.in_proj_bias"):
            dim = value.shape[0] // 3
            kind = key.rsplit("_", 1)[1]
            out[f"attn_pool.q.{kind}"], out[f"attn_pool.kv.{kind}"] = value[:dim], value[dim:]
        elif key == "proj":
            out["head.weight"] = value.t().contiguous()
            out["head.bias"] = value.new_zeros(value.shape[1])
        elif key == "class_embedding":
            out["cls_token"] = value.reshape(1, 1, -1)
        elif key == "positional_embedding":
            out["pos_embed"] = value[None]
        else:
            out[_rename(key, _TIMM_NAMES, forward=True)] = value
    return out


def timm_to_official(sd: StateDict) -> StateDict:
    """timm ``vit_pe_*`` layout -> official layout; exact inverse of :func:`official_to_timm`."""
    out: StateDict = {}
    for key, value in sd.items():
        if key.startswith("attn_pool.kv."):
            continue
        if key.startswith("attn_pool.q."):
            kind = key.rsplit(".", 1)[1]
            out[f"attn_pool.attn.in_proj_{kind}"] = torch.cat(
                [value, sd[f"attn_pool.kv.{kind}"]], dim=0)
        elif key == "head.weight":
            out["proj"] = value.t().contiguous()
        elif key == "head.bias":
            if value.abs().max() > 0:
                raise CheckpointError("timm head.bias is non-zero: the official projection has "
                                      "no bias, so this head cannot be converted")
        elif key == "cls_token":
            out["class_embedding"] = value.reshape(-1)
        elif key == "pos_embed":
            out["positional_embedding"] = value.reshape(value.shape[-2], value.shape[-1])
        elif key.startswith("rope.") or key.endswith(("attn.q_norm.weight", "attn.k_norm.weight")):
            continue  # timm recomputes RoPE; PE has no q/k norm
        else:
            out[_rename(key, _TIMM_NAMES, forward=False)] = value
    return out


# ----------------------------------------------------------------------------- detectron2

def _resample_patch_kernel(conv: torch.Tensor, patch_size: int) -> torch.Tensor:
    """(C, 3, k, k) -> (C, 3, p, p), bicubic, as the official detection converter does."""
    return F.interpolate(conv.float(), size=(patch_size, patch_size), mode="bicubic",
                         align_corners=False).to(conv.dtype)


def official_to_detectron2(sd: StateDict, patch_size: int | None = None) -> dict[str, StateDict]:
    """Official layout -> the official detection code's converted layout ``{"model": ...}``.

    The position embedding becomes (1, N, C) and is kept at its grid (it is tiled at run time);
    ``patch_size`` (e.g. 16 for the 14-patch G/L models) resizes ``conv1`` bicubically, which is
    not invertible, so only conversions that keep the patch size round-trip exactly.
    """
    out = dict(sd)
    out["positional_embedding"] = sd["positional_embedding"][None]
    conv = sd["conv1.weight"]
    if patch_size and patch_size != conv.shape[-1]:
        out["conv1.weight"] = _resample_patch_kernel(conv, patch_size)
    return {"model": out}


def _drop_rope_and_squeeze(sd: dict[str, Any], prefix: str) -> None:
    """In place: drop RoPE buffers under ``prefix``, squeeze a (1, N, C) position embedding."""
    for key in [k for k in sd if k.startswith(prefix)]:
        if _ROPE_BUFFER.search(key[len(prefix):]):
            del sd[key]
    pos = sd.get(prefix + "positional_embedding")
    if pos is not None and pos.ndim == 3:
        sd[prefix + "positional_embedding"] = pos[0]


def adapt_detection_state_dict(sd: dict[str, Any], prefix: str, patch_size: int) -> None:
    """In place: make official detection-layout backbone keys under ``prefix`` fit PEViT.

    Drops the recomputable RoPE buffers (``rope_win.freqs_cos``, ``...attn.rope.freqs_sin``),
    squeezes a (1, N, C) ``positional_embedding`` to (N, C) and resamples a ``conv1`` kernel of
    another size (14 -> 16) bicubically, as the official converter does.
    """
    _drop_rope_and_squeeze(sd, prefix)
    conv = sd.get(prefix + "conv1.weight")
    if conv is not None and conv.ndim == 4 and conv.shape[-1] != patch_size:
        log.warning("resampling the %dx%d patch kernel to %dx%d (bicubic, as the official "
                    "detection converter does)", conv.shape[-2], conv.shape[-1], patch_size,
                    patch_size)
        sd[prefix + "conv1.weight"] = _resample_patch_kernel(conv, patch_size)


def keep_unused_cls(sd: dict[str, Any], prefix: str, net: PEViT) -> None:
    """In place: detectors trained by the official code have no ``class_embedding`` (windowed
    blocks drop the cls token); ``net`` has one, unused in windowed mode, so keep its value
    instead of failing a strict load."""
    key = prefix + "class_embedding"
    if (net.use_cls_token and not net.num_prefix_tokens and key not in sd
            and prefix + "conv1.weight" in sd):
        sd[key] = net.class_embedding.detach().clone()


def find_backbone(model: nn.Module) -> tuple[str, PEViT]:
    """The PEViT inside ``model`` (unwrapping DDP): its module name and the module itself."""
    model = getattr(model, "module", model)
    for name, module in model.named_modules():
        if isinstance(module, PEViT):
            return name, module
    raise ValueError(f"{type(model).__name__} contains no PEViT backbone")


def to_detector_layout(obj: Any, model: nn.Module) -> StateDict:
    """Any PE checkpoint's tensors -> the key layout of ``model`` (a detector with a PEViT).

    Detector checkpoints keep their keys (the backbone part adapted in place by
    :func:`adapt_detection_state_dict`); backbone-only checkpoints (official, timm/HF,
    d2-converted) are converted to official names and put under the backbone's prefix.
    """
    prefix, net = find_backbone(model)
    prefix = f"{prefix}." if prefix else ""
    tensors, _ = unwrap_state_dict(obj)
    if prefix and not any(k.startswith(prefix) for k in tensors):
        official, _ = to_official(tensors)
        tensors = {prefix + k: v for k, v in official.items()}
    adapt_detection_state_dict(tensors, prefix, net.patch_size)
    keep_unused_cls(tensors, prefix, net)
    return tensors
