"""Reading, converting, saving and strictly loading PE checkpoints.

Every key layout (official, timm / Hugging Face / OpenCLIP, detectron2 backbone and detector
files) is described in :mod:`pe_dense.backbone.layouts`; this module reads files
(:func:`read_checkpoint`, ``hf://`` specs), converts between layouts
(:func:`convert_state_dict`) and loads weights through ONE strict check,
:func:`load_state_dict_checked`: every missing, unexpected or mis-shaped key raises
:class:`WeightLoadError` with a readable :class:`LoadReport` before a single tensor is copied.
It serves backbones (:func:`load_weights`), detectors with a PEViT inside
(:func:`load_detector_checkpoint`) and whole training checkpoints (the engine).
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from pe_dense.backbone.layouts import (
    FORMATS,
    CheckpointError,
    StateDict,
    adapt_detection_state_dict,
    find_backbone,
    keep_unused_cls,
    official_to_detectron2,
    official_to_timm,
    timm_to_official,
    to_official,
    unwrap_state_dict,
)
from pe_dense.backbone.pe_vit import PEViT
from pe_dense.backbone.variants import VARIANTS
from pe_dense.utils.io import atomic_path

# The layout conversions are part of this module's public face (``pe-dense convert``).
__all__ = [
    "CheckpointError", "WeightLoadError", "LoadReport", "read_checkpoint", "to_official",
    "official_to_timm", "timm_to_official", "official_to_detectron2", "convert_state_dict",
    "load_weights", "load_detector_checkpoint", "load_state_dict_checked", "guess_variants",
    "save_checkpoint",
]

log = logging.getLogger(__name__)


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



# ----------------------------------------------------------------------------- the report

@dataclass
class LoadReport:
    """What a checkpoint had that the model lacked, and the reverse.

    ``str(report)`` leads with the checkpoint's format and the hints (what the checkpoint looks
    like, how to fix it), then lists the mismatching keys grouped by block.
    """

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
        lines += [f"hint: {h}" for h in self.hints]
        for title, keys in (("missing in checkpoint", self.missing),
                            ("unexpected in checkpoint", self.unexpected)):
            if keys:
                lines.append(f"{title}: {_grouped(keys)}")
        for key, ckpt, model in self.mismatched[:8]:
            lines.append(f"shape mismatch {key}: checkpoint {_fmt(ckpt)} vs model {_fmt(model)}")
        if len(self.mismatched) > 8:
            lines.append(f"... {len(self.mismatched) - 8} more shape mismatches")
        return "\n".join(lines)


def _fmt(shape: tuple) -> str:
    return "x".join(str(s) for s in shape) or "scalar"


def _group_of(key: str) -> str:
    """``transformer.resblocks.3.mlp.c_fc.weight`` -> ``transformer.resblocks.3``: the key up to
    its first numeric part, else its parent module."""
    parts = key.split(".")
    for i, part in enumerate(parts[:-1]):
        if part.isdigit():
            return ".".join(parts[: i + 1])
    return ".".join(parts[:-1]) or key


def _grouped(keys: Sequence[str], limit: int = 8) -> str:
    """Keys sharing a block or module shown once as ``prefix.* (n keys)``."""
    groups: dict[str, list[str]] = {}
    for key in keys:
        groups.setdefault(_group_of(key), []).append(key)
    shown = [members[0] if len(members) == 1 else f"{prefix}.* ({len(members)} keys)"
             for prefix, members in groups.items()]
    more = f", ... ({len(keys)} keys total)" if len(shown) > limit else ""
    return ", ".join(shown[:limit]) + more


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


def _explain(key: str, ckpt: tuple, model: tuple, vit: PEViT) -> str | None:
    """Advice for a mis-shaped PEViT tensor (``key`` relative to the PEViT)."""
    if key == "positional_embedding":
        extra = int(vit.use_cls_token)
        grid = round((ckpt[0] - extra) ** 0.5)
        patch = vit.patch_size
        return (f"positional_embedding {_fmt(ckpt)} vs {_fmt(model)}: the checkpoint's position "
                f"grid is {grid}x{grid}; build the model with image_size={grid * patch} (or "
                f"pretrain_image_size={grid * patch}) - inputs of any size still work")
    if key == "conv1.weight" and ckpt[-1] != model[-1]:
        return (f"conv1 kernel {ckpt[-1]}x{ckpt[-1]} vs {model[-1]}x{model[-1]}: build the model "
                f"with patch_size={ckpt[-1]}, or resample the kernel as the official detection "
                f"code does: pe-dense convert SRC DST --to detectron2 --patch-size {model[-1]}")
    return None


def _backbone_hints(module: nn.Module, sd: Mapping[str, torch.Tensor],
                    mismatched: list[tuple[str, tuple, tuple]]) -> list[str]:
    """Hints for the PEViTs inside ``module``: per mis-shaped tensor, and a variant guess."""
    hints = []
    for name, vit in module.named_modules():
        if not isinstance(vit, PEViT):
            continue
        prefix = f"{name}." if name else ""
        for key, ckpt, model in mismatched:
            if key.startswith(prefix):
                hint = _explain(key[len(prefix):], ckpt, model, vit)
                hints += [hint] if hint else []
        guesses = guess_variants({k[len(prefix):]: v for k, v in sd.items()
                                  if k.startswith(prefix)})
        if guesses:
            where = f"'s {name}" if name else ""
            hints.append(f"the checkpoint{where} looks like {' or '.join(guesses)}")
    return hints


# ----------------------------------------------------------------------------- loading

def load_state_dict_checked(module: nn.Module, state_dict: Mapping[str, torch.Tensor], *,
                            strict: bool = True, source_format: str = "state dict",
                            headline: str = "checkpoint does not fit the model",
                            exclude: Sequence[str] = ()) -> LoadReport:
    """Load ``state_dict`` (already in ``module``'s key layout) into ``module``, checked.

    Strict (default): any missing, unexpected or mis-shaped key raises :class:`WeightLoadError`
    (``headline``, then the :class:`LoadReport`) before a single tensor is copied. With
    ``strict=False`` the fitting tensors are loaded and the report is logged and returned.
    ``exclude``: key prefixes of ``module`` that this load does not cover (not reported
    missing). Hints about PEViT shapes and variants are added wherever a PEViT sits.
    """
    module = getattr(module, "module", module)  # DDP
    own = {k: v for k, v in module.state_dict().items() if not k.startswith(tuple(exclude))}
    report = LoadReport(source_format=source_format)
    report.missing = [k for k in own if k not in state_dict]
    report.unexpected = [k for k in state_dict if k not in own]
    report.mismatched = [(k, tuple(state_dict[k].shape), tuple(own[k].shape)) for k in own
                         if k in state_dict and state_dict[k].shape != own[k].shape]
    if not report.ok:
        report.hints = _backbone_hints(module, state_dict, report.mismatched)
        if strict:
            raise WeightLoadError(f"{headline}\n{report}")
        log.warning("non-strict load, skipped keys:\n%s", report)
    bad = {k for k, _, _ in report.mismatched}
    module.load_state_dict({k: v for k, v in state_dict.items() if k in own and k not in bad},
                           strict=False)
    return report


def load_weights(model: nn.Module, source: Any, strict: bool = True, *,
                 detection: bool = False) -> LoadReport:
    """Load a backbone checkpoint (path, ``hf://`` spec or dict, any layout) into ``model``.

    Strict by default (see :func:`load_state_dict_checked`). ``detection=True`` (a PEViT
    ``model``) also accepts the official detection code's conventions: a patch kernel of another
    size is resampled to ``model.patch_size`` (bicubic), and a windowed model keeps its own,
    unused ``class_embedding`` when the checkpoint has none.
    """
    sd, fmt = to_official(read_checkpoint(source))
    if detection and isinstance(model, PEViT):
        adapt_detection_state_dict(sd, "", model.patch_size)
        keep_unused_cls(sd, "", model)
    return load_state_dict_checked(model, sd, strict=strict, source_format=fmt)


def load_detector_checkpoint(model: nn.Module, source: Any,
                             strict_backbone: bool = True) -> dict[str, Any]:
    """Initialise a detector with a PEViT inside from ``source`` (path, ``hf://`` spec or dict).

    - Backbone-only checkpoints (official ``.pt``, timm/HF, ``pe-dense convert --to detectron2``
      output) load into the PEViT (``detection=True`` rules of :func:`load_weights`); the other
      detector weights keep their init.
    - Detector checkpoints (the backbone's keys, e.g. ``backbone.net.*``, plus pyramid/heads: the
      official PE detection checkpoints or a detectron2 ``model_final.pth``) load the backbone
      strictly and the rest by name; tensors whose shapes differ (another number of classes)
      or that the model lacks are skipped with a warning.

    Returns ``{"backbone": LoadReport, "skipped": [...], "missing": [...]}``.
    """
    prefix, net = find_backbone(model)
    prefix = f"{prefix}." if prefix else ""
    sd, _ = unwrap_state_dict(read_checkpoint(source))
    if not prefix or not any(k.startswith(prefix) for k in sd):
        report = load_weights(net, sd, strict=strict_backbone, detection=True)
        return {"backbone": report, "skipped": [], "missing": []}
    adapt_detection_state_dict(sd, prefix, net.patch_size)
    keep_unused_cls(sd, prefix, net)
    backbone = load_state_dict_checked(
        net, {k[len(prefix):]: v for k, v in sd.items() if k.startswith(prefix)},
        strict=strict_backbone, source_format="detectron2",
        headline="the checkpoint's backbone does not fit the model's")
    rest = load_state_dict_checked(
        model, {k: v for k, v in sd.items() if not k.startswith(prefix)}, strict=False,
        source_format="detectron2", exclude=(prefix,))
    return {"backbone": backbone, "skipped": [k for k, _, _ in rest.mismatched] + rest.unexpected,
            "missing": rest.missing}
