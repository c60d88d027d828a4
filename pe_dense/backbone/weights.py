"""Reading, converting and strictly loading PE checkpoints.

The canonical layout is the official one (``core/vision_encoder/pe.py`` names, 2-D
``positional_embedding``). Accepted sources, auto-detected:

- official ``.pt`` files: flat dicts, ``state_dict``/``weights`` wrappers, ``module.`` prefixes,
  full CLIP checkpoints (only ``visual.*`` is kept; the text tower is dropped);
- timm ``vit_pe_*`` state dicts, also behind Hugging Face ``timm_model.`` /
  ``model.vision_tower.timm_model.`` or OpenCLIP ``visual.trunk.`` prefixes;
- detectron2-converted files of the official detection code: ``{"model": ...}`` with official
  names, a 3-D position embedding and possibly a 16x16 ``conv1`` resampled from 14x14, or full
  detector checkpoints with ``backbone.net.*`` keys.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from pe_dense.backbone.variants import VARIANTS
from pe_dense.utils.io import atomic_path

__all__ = [
    "CheckpointError", "WeightLoadError", "LoadReport", "read_checkpoint", "to_official",
    "official_to_timm", "timm_to_official", "official_to_detectron2", "convert_state_dict",
    "load_weights", "guess_variants", "save_checkpoint",
]

log = logging.getLogger(__name__)

StateDict = dict[str, torch.Tensor]
FORMATS = ("official", "timm", "detectron2")


class CheckpointError(ValueError):
    """A file or object that is not a readable PE checkpoint."""


class WeightLoadError(ValueError):
    """A checkpoint whose keys or shapes do not fit the model (strict loading)."""


# ----------------------------------------------------------------------------- reading

def read_checkpoint(source: str | os.PathLike | dict) -> Any:
    """Load a checkpoint object from a path, ``hf://owner/repo[:file]``, or pass a dict through.

    ``hf://facebook/PE-Spatial-B16-512`` fetches ``PE-Spatial-B16-512.pt`` from that repository
    with ``huggingface_hub`` (cached); offline, it fails with advice to pass a local file.
    """
    if isinstance(source, dict):
        return source
    source = str(source)
    if source.startswith("hf://"):
        source = _download_hf(source[len("hf://"):])
    path = Path(source).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            return load_file(str(path))
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types for damaged files
        raise CheckpointError(
            f"could not read {path} as a checkpoint ({type(exc).__name__}: {exc}). The file may "
            "be truncated (re-download it) or not a PyTorch/safetensors checkpoint."
        ) from exc


def _download_hf(spec: str) -> str:
    repo, _, filename = spec.partition(":")
    if repo.count("/") != 1:
        raise ValueError(f"hf://{spec}: expected hf://owner/repo or hf://owner/repo:file")
    filename = filename or f"{repo.split('/')[1]}.pt"
    try:
        from huggingface_hub import hf_hub_download
    except ImportError as exc:
        raise ImportError("hf:// weights need huggingface_hub: "
                          "pip install huggingface_hub") from exc
    try:
        return hf_hub_download(repo_id=repo, filename=filename)
    except Exception as exc:
        raise RuntimeError(
            f"could not fetch {filename} from the Hugging Face repository {repo} "
            f"({type(exc).__name__}: {exc}). Without network access, download the file on a "
            f"connected machine (huggingface-cli download {repo} {filename}) and pass its local "
            "path as weights=..."
        ) from exc


# ----------------------------------------------------------------------------- layouts

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


def _rename(key: str, pairs: list[tuple[str, str]], forward: bool) -> str | None:
    for official, timm in pairs:
        src, dst = (official, timm) if forward else (timm, official)
        pattern = "^" + re.escape(src).replace(r"\{i\}", r"(\d+)")
        m = re.match(pattern, key)
        if m:
            out = dst.replace("{i}", m.group(1)) if m.groups() else dst
            return out + key[m.end():]
    return None


def _unwrap(obj: Any) -> tuple[StateDict, bool]:
    """Strip wrapper dicts; returns the tensor dict and whether a ``model`` wrapper was seen."""
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
    return {k: v for k, v in obj.items() if isinstance(v, torch.Tensor)}, saw_model


def detect_format(sd: StateDict) -> str:
    """``"timm"`` for timm/HF/OpenCLIP-trunk keys, ``"official"`` otherwise (d2 included)."""
    timm_key = any(k.endswith("patch_embed.proj.weight") for k in sd)
    return "timm" if timm_key else "official"


def to_official(obj: Any) -> tuple[StateDict, str]:
    """Any supported checkpoint object -> (official-layout state dict, source format name)."""
    sd, saw_model = _unwrap(obj)
    sd = {k[len("module."):] if k.startswith("module.") else k: v for k, v in sd.items()}
    if detect_format(sd) == "timm":
        prefix = next((p for p in _TIMM_PREFIXES if f"{p}patch_embed.proj.weight" in sd), "")
        return timm_to_official({k[len(prefix):]: v for k, v in sd.items()
                                 if k.startswith(prefix)}), "timm"
    fmt = "official"
    if any(k.startswith("backbone.net.") for k in sd):
        sd, fmt = _strip_prefix(sd, "backbone.net."), "detectron2"
    elif any(k.startswith("visual.") for k in sd):
        sd = _strip_prefix(sd, "visual.")  # full CLIP checkpoint: drop the text tower
    pos = sd.get("positional_embedding")
    if pos is not None and pos.ndim == 3:
        sd["positional_embedding"], fmt = pos[0], "detectron2"
    if saw_model and fmt == "official":
        fmt = "detectron2"
    # Detection checkpoints store recomputable RoPE tables as buffers.
    return {k: v for k, v in sd.items() if not re.search(r"(^|\.)rope\w*\.freqs_", k)}, fmt


def _strip_prefix(sd: StateDict, prefix: str) -> StateDict:
    return {k[len(prefix):]: v for k, v in sd.items() if k.startswith(prefix)}


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
            new = _rename(key, _TIMM_NAMES, forward=True)
            if new is None:
                raise CheckpointError(f"no timm name for official key {key!r}")
            out[new] = value
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
            new = _rename(key, _TIMM_NAMES, forward=False)
            if new is None:
                raise CheckpointError(f"unexpected timm key {key!r}: not a PE vision tower")
            out[new] = value
    return out


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
        out["conv1.weight"] = F.interpolate(conv.float(), size=(patch_size, patch_size),
                                            mode="bicubic", align_corners=False).to(conv.dtype)
    return {"model": out}


def convert_state_dict(obj: Any, to: str, patch_size: int | None = None) -> Any:
    """Convert any supported checkpoint object to ``to`` in FORMATS."""
    if to not in FORMATS:
        raise ValueError(f"unknown target format {to!r}; choose one of {FORMATS}")
    sd, _ = to_official(obj)
    if to == "timm":
        return official_to_timm(sd)
    if to == "detectron2":
        return official_to_detectron2(sd, patch_size)
    return sd


def save_checkpoint(obj: Any, path: str | os.PathLike) -> None:
    """Write ``obj`` with torch.save (or safetensors for ``.safetensors``) atomically."""
    with atomic_path(path) as tmp:
        if tmp.suffix == ".safetensors":
            from safetensors.torch import save_file

            save_file({k: v.contiguous() for k, v in obj.items()}, str(tmp))
        else:
            torch.save(obj, tmp)


# ----------------------------------------------------------------------------- loading

@dataclass
class LoadReport:
    """What a checkpoint had that the model lacked, and the reverse."""

    source_format: str
    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    mismatched: list[tuple[str, tuple, tuple]] = field(default_factory=list)
    hints: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.missing or self.unexpected or self.mismatched)

    def __str__(self) -> str:
        lines = [f"checkpoint format: {self.source_format}"]
        for title, keys in (("missing in checkpoint", self.missing),
                            ("unexpected in checkpoint", self.unexpected)):
            if keys:
                more = f", ... ({len(keys)} total)" if len(keys) > 8 else ""
                shown = ", ".join(keys[:8]) + more
                lines.append(f"{title}: {shown}")
        for key, ckpt, model in self.mismatched:
            lines.append(f"shape mismatch {key}: checkpoint {_fmt(ckpt)} vs model {_fmt(model)}")
        return "\n".join(lines + [f"hint: {h}" for h in self.hints])


def _fmt(shape: tuple) -> str:
    return "x".join(str(s) for s in shape) or "scalar"


def guess_variants(sd: StateDict) -> list[str]:
    """Names of variants whose architecture matches an official-layout state dict."""
    if "conv1.weight" not in sd:
        return []
    blocks = {int(m.group(1)) for k in sd if (m := re.match(r"transformer\.resblocks\.(\d+)\.", k))}
    conv = sd["conv1.weight"]
    pos = sd.get("positional_embedding")
    found = []
    for name, cfg in VARIANTS.items():
        n_pos = (cfg.image_size // cfg.patch_size) ** 2 + int(cfg.use_cls_token)
        if (cfg.width == conv.shape[0] and len(blocks) == cfg.layers
                and cfg.use_cls_token == ("class_embedding" in sd)
                and (cfg.ls_init_value is not None) == any(".ls_1." in k for k in sd)
                and (cfg.pool_type == "attn") == ("attn_pool.probe" in sd)
                and (pos is None or pos.shape[0] == n_pos)):
            found.append(name)
    return found


def _explain(key: str, ckpt: tuple, model: tuple, module: nn.Module) -> str | None:
    if key == "positional_embedding":
        extra = int("class_embedding" in dict(module.named_parameters()))
        grid = round((ckpt[0] - extra) ** 0.5)
        patch = getattr(module, "patch_size", 16)
        return (f"positional_embedding {_fmt(ckpt)} vs {_fmt(model)}: the checkpoint's position "
                f"grid is {grid}x{grid}; build the model with image_size={grid * patch} (or "
                f"pretrain_image_size={grid * patch}) - inputs of any size still work")
    if key == "conv1.weight" and ckpt[-1] != model[-1]:
        return (f"conv1 kernel {ckpt[-1]}x{ckpt[-1]} vs {model[-1]}x{model[-1]}: build the model "
                f"with patch_size={ckpt[-1]}, or resample the kernel as the official detection "
                f"code does: pe-dense convert SRC DST --to detectron2 --patch-size {model[-1]}")
    return None


def load_weights(model: nn.Module, source: Any, strict: bool = True) -> LoadReport:
    """Load a checkpoint (path, ``hf://`` spec or dict, any supported layout) into ``model``.

    Strict by default: any missing, unexpected or mis-shaped key raises
    :class:`WeightLoadError` before a single tensor is copied. With ``strict=False`` the
    matching tensors are loaded and the report is logged and returned.
    """
    sd, fmt = to_official(read_checkpoint(source))
    own = model.state_dict()
    report = LoadReport(source_format=fmt)
    report.missing = [k for k in own if k not in sd]
    report.unexpected = [k for k in sd if k not in own]
    for key in own.keys() & sd.keys():
        if own[key].shape != sd[key].shape:
            report.mismatched.append((key, tuple(sd[key].shape), tuple(own[key].shape)))
            hint = _explain(key, tuple(sd[key].shape), tuple(own[key].shape), model)
            if hint:
                report.hints.append(hint)
    if not report.ok:
        guesses = guess_variants(sd)
        if guesses:
            report.hints.append(f"the checkpoint looks like {' or '.join(guesses)}")
        if strict:
            raise WeightLoadError(f"checkpoint does not fit the model:\n{report}")
        log.warning("non-strict load, skipped keys:\n%s", report)
    bad = {k for k, _, _ in report.mismatched}
    model.load_state_dict({k: v for k, v in sd.items() if k in own and k not in bad},
                          strict=False)
    return report
