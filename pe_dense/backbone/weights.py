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
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from pe_dense.backbone.checkpoints import backbone_of_training_checkpoint, load_object
from pe_dense.backbone.layouts import (
    FORMATS,
    CheckpointError,
    adapt_detection_state_dict,
    find_backbone,
    keep_unused_cls,
    official_to_detectron2,
    official_to_timm,
    timm_to_official,
    to_official,
    unwrap_state_dict,
)
from pe_dense.backbone.load_report import (
    LoadReport,
    describe_towers,
    guess_variants,
    layout_hints,
    tower_prefix,
)
from pe_dense.backbone.pe_vit import PEViT
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
    """A checkpoint whose keys or shapes do not fit the model (strict loading).

    ``str(exc)`` is the summary (towers side by side, the fix, at most 10 grouped key lines);
    ``exc.details`` lists every mismatching key; ``exc.report`` is the :class:`LoadReport`.
    """

    def __init__(self, message: str, report: LoadReport | None = None) -> None:
        super().__init__(message)
        self.report = report
        self.details = report.details() if report is not None else ""


# ----------------------------------------------------------------------------- reading

def read_checkpoint(source: str | os.PathLike | dict) -> Any:
    """Load a checkpoint object from a path, ``hf://owner/repo[:file]``, or pass a dict through.

    ``hf://facebook/PE-Spatial-B16-512`` fetches ``PE-Spatial-B16-512.pt`` from that repository
    with ``huggingface_hub`` (cached); offline, it fails with advice to pass a local file. Files
    are read safely by :func:`pe_dense.backbone.checkpoints.load_object`; a file that is not a
    checkpoint (an image, a truncated download ...) is a :class:`CheckpointError` saying so.
    """
    if isinstance(source, dict):
        return source
    source = str(source)
    if source.startswith("hf://"):
        source = _download_hf(source[len("hf://"):])
    return load_object(source, command="weights")


def _download_hf(spec: str) -> str:
    """``owner/repo[:file]`` -> local path; offline it fails fast (:mod:`pe_dense.utils.hub`)."""
    from pe_dense.utils.hub import download_file

    repo, _, filename = spec.partition(":")
    if repo.count("/") != 1:
        raise ValueError(f"hf://{spec}: expected hf://owner/repo or hf://owner/repo:file")
    return download_file(repo, filename or f"{repo.split('/')[1]}.pt")


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

def _backbone_hints(module: nn.Module, sd: Mapping[str, torch.Tensor],
                    report: LoadReport) -> None:
    """Fill ``report.towers`` and ``report.hints`` for the PEViTs inside ``module``: each
    tower side by side with the checkpoint's (see :mod:`pe_dense.backbone.load_report`), the
    fix, and advice for whole-model or CLIP-with-text checkpoints."""
    report.hints = layout_hints(report.unexpected, report.missing)
    whole_model = tower_prefix(report.unexpected)
    for name, vit in module.named_modules():
        if not isinstance(vit, PEViT):
            continue
        prefix = f"{name}." if name else ""
        ckpt_prefix = prefix
        if not any(k.startswith(prefix + "conv1.") for k in sd) and whole_model is not None:
            ckpt_prefix = whole_model  # a task-model checkpoint given as a backbone
        towers, fixes = describe_towers(
            {k[len(ckpt_prefix):]: v for k, v in sd.items() if k.startswith(ckpt_prefix)},
            vit.state_dict(), label=name)
        report.towers += towers
        report.hints += [f for f in fixes if f not in report.hints]


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
        _backbone_hints(module, state_dict, report)
        if strict:
            raise WeightLoadError(f"{headline}\n{report.summary()}", report)
        log.warning("non-strict load, skipped keys:\n%s", report.summary())
        log.debug("every skipped key:\n%s", report.details())
    bad = {k for k, _, _ in report.mismatched}
    module.load_state_dict({k: v for k, v in state_dict.items() if k in own and k not in bad},
                           strict=False)
    return report


def load_weights(model: nn.Module, source: Any, strict: bool = True, *,
                 detection: bool = False) -> LoadReport:
    """Load a backbone checkpoint (path, ``hf://`` spec or dict, any layout) into ``model``;
    a ``pe-dense train`` checkpoint gives the weights of its backbone.

    Strict by default (see :func:`load_state_dict_checked`). ``detection=True`` (a PEViT
    ``model``) also accepts the official detection code's conventions: a patch kernel of another
    size is resampled to ``model.patch_size`` (bicubic), and a windowed model keeps its own,
    unused ``class_embedding`` when the checkpoint has none.
    """
    obj = read_checkpoint(source)
    backbone = backbone_of_training_checkpoint(obj)
    if backbone is not None:
        log.info("%s is a pe-dense training checkpoint: loading the weights of its backbone",
                 source if not isinstance(source, dict) else "the checkpoint")
        obj = backbone
    sd, fmt = to_official(obj)
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
