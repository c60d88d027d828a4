"""The student backbone: building it (optionally adding LayerScale) and exporting it.

The student is any backbone: a PE variant or ``timm/<name>``. The exported checkpoint is the
backbone's own layout (the official state dict of a PE variant; timm's for timm models),
loadable by ``create_backbone(name, weights=path)``. When training added LayerScale to a variant
that has none (``overrides=dict(ls_init_value=0.1)``), export folds each ``gamma`` into the linear
layer before it (``attn.out_proj`` for ``ls_1``, ``mlp.c_proj`` for ``ls_2``): the network computes
the same function without the extra parameters.
"""

from __future__ import annotations

import logging
import os
from dataclasses import fields
from typing import Any

import torch

from pe_dense.backbone.contract import Backbone
from pe_dense.backbone.factory import TIMM_PREFIX
from pe_dense.backbone.variants import get_variant
from pe_dense.backbone.weights import load_weights, save_checkpoint

__all__ = ["build_student", "student_state_dict", "export_student"]

log = logging.getLogger(__name__)

CORE_HEAD_KEYS = ("attn_pool.", "proj", "ln_post.")


def build_student(model: str, weights: Any = None, seed: int | None = 0,
                  **overrides: Any) -> Backbone:
    """A trainable backbone ``model``: ``timm/<name>`` (``overrides``: ``timm.create_model``
    arguments; ``weights`` in timm's layout, loaded strictly), or a PE variant with its
    ``overrides`` (``drop_path``, ``ls_init_value``, ...). ``weights`` may lack the LayerScale keys
    that ``ls_init_value`` adds (they start at ``ls_init_value``) and may carry a Core pooling head
    (``attn_pool``, ``proj``, ``ln_post``: dropped, e.g. PE-Core-G weights for a PE-Spatial-G
    student); any other missing or extra key is an error."""
    from pe_dense.backbone.factory import create_backbone
    from pe_dense.utils.seeding import seeded

    if model.startswith(TIMM_PREFIX):
        with seeded(seed):
            return create_backbone(model, weights=weights, **overrides)
    allowed = {f.name for f in fields(get_variant(model))} | {
        "drop_path", "window_size", "global_blocks", "posemb_mode", "rope_mode",
        "pretrain_image_size", "grad_checkpointing"}
    unknown = sorted(set(overrides) - allowed)
    if unknown:
        raise ValueError(f"unknown student option(s) {unknown}; allowed: {sorted(allowed)}")
    with seeded(seed):
        student = create_backbone(model, **overrides)
    if weights is not None:
        report = load_weights(student, weights, strict=False)
        dropped = [k for k in report.unexpected if k.startswith(CORE_HEAD_KEYS)]
        bad = [k for k in report.missing if ".ls_" not in k]
        bad += [k for k in report.unexpected if k not in dropped]
        bad += [k for k, _, _ in report.mismatched]
        if bad:
            raise ValueError(f"student weights {weights} do not fit {model}:\n{report}")
        if dropped:
            log.info("student: ignoring the checkpoint's pooling head %s", sorted(dropped))
        if report.missing:
            log.info("student: %d LayerScale tensors start at ls_init_value", len(report.missing))
    return student


def student_state_dict(student: Backbone, model: str) -> dict[str, torch.Tensor]:
    """The student's state dict in its own layout (:meth:`Backbone.export_state_dict`; for a
    PE variant with LayerScale added in training, folded in when the variant has none).
    Tensors are detached float32 CPU copies."""
    sd = {k: v.detach().float().cpu().clone() for k, v in student.export_state_dict().items()}
    if model.startswith(TIMM_PREFIX) or get_variant(model).ls_init_value is not None:
        return sd
    for i in range(student.num_layers):
        pre = f"transformer.resblocks.{i}."
        for ls, linear in (("ls_1", "attn.out_proj"), ("ls_2", "mlp.c_proj")):
            gamma = sd.pop(f"{pre}{ls}.gamma", None)
            if gamma is None:
                continue
            sd[f"{pre}{linear}.weight"] = sd[f"{pre}{linear}.weight"] * gamma[:, None]
            sd[f"{pre}{linear}.bias"] = sd[f"{pre}{linear}.bias"] * gamma
    return sd


def export_student(student: Backbone, model: str, path: str | os.PathLike) -> None:
    """Write the student as an official checkpoint (atomically) for ``create_backbone``."""
    save_checkpoint(student_state_dict(student, model), path)
    log.info("student %s written to %s", model, path)
