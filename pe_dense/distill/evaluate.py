"""Alignment evaluation of a distilled student: numbers, PCA pictures and training curves.

Used by ``pe-dense distill-eval``. Images are the dataset's uint8 base images. A student is
read either from a training checkpoint (the whole DistillModel: student and projections) or
from the exported ``student.pt`` (plus ``distill_heads.pt`` next to it for the projections).
"""

from __future__ import annotations

import json
import logging
import os
from collections import defaultdict
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pe_dense.backbone.checkpoints import CheckpointError, load_object, state_dict_of
from pe_dense.backbone.factory import describe_backbone
from pe_dense.backbone.weights import read_checkpoint
from pe_dense.distill.model import DistillModel
from pe_dense.distill.teachers import TeacherBuilder

__all__ = ["build_eval_model", "evaluate", "feature_maps", "read_scalars"]

log = logging.getLogger(__name__)


def build_eval_model(model_cfg: dict[str, Any], checkpoint: str | os.PathLike | None,
                     device: str | torch.device = "cpu",
                     teacher_builders: Mapping[str, TeacherBuilder] | None = None
                     ) -> DistillModel:
    """A DistillModel from the config's ``model`` dict, with ``checkpoint`` loaded.

    ``checkpoint``: a training checkpoint (the whole model: student and projections) or an
    exported ``student.pt`` (projections from ``distill_heads.pt`` next to it); None keeps the
    seeded initial student (the start of training). ``teacher_builders``: see
    :class:`DistillModel` (needed for online SAM 2 teachers).
    """
    cfg = {k: v for k, v in dict(model_cfg).items() if k != "type"}
    cfg["teacher_builders"] = teacher_builders
    if checkpoint is None:
        return DistillModel(**cfg).to(device).eval()
    sd = _read_state_dict(checkpoint)
    if any(k.startswith("student.") for k in sd):  # training checkpoint (whole model)
        model = DistillModel(**cfg)
        model.load_state_dict(sd, strict=True)
        return model.to(device).eval()
    # exported student.pt: the plain variant (LayerScale already folded in)
    student_cfg = dict(cfg["student"])
    if not describe_backbone(student_cfg["model"])["layer_scale"]:
        student_cfg.pop("ls_init_value", None)
    model = DistillModel(**{**cfg, "student": {**student_cfg, "weights": sd}})
    heads = Path(checkpoint).with_name("distill_heads.pt")
    if heads.is_file():
        model.proj.load_state_dict(read_checkpoint(heads)["proj"])
    elif any(len(list(p.parameters())) for p in model.proj.values()):
        log.warning("no %s: the cosine of projected teachers uses untrained projections", heads)
    return model.to(device).eval()


def _read_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """The model state dict in ``path``: a bare state dict (``student.pt``) or a training
    checkpoint (``{"state_dict": ..., "meta": ...}``), read by the one checkpoint reader."""
    sd = state_dict_of(load_object(path, command="test"))
    if sd is None:
        raise CheckpointError(f"{path} holds no model state dict; pass a checkpoint of the "
                              "distillation run (work_dir/iter_N.pth) or its student.pt")
    return sd


@torch.no_grad()
def evaluate(model: DistillModel, dataset: torch.utils.data.Dataset, batch_size: int = 8,
             device: str | torch.device = "cpu") -> tuple[dict[str, float], list[dict]]:
    """Mean and per-image alignment (``<teacher>_cos``, ``<teacher>_corr``) over ``dataset``."""
    from torch.utils.data import DataLoader

    rows: list[dict[str, Any]] = []
    for batch in DataLoader(dataset, batch_size=batch_size, shuffle=False):
        images = batch["image"].to(device)
        cached = {k: v.to(device) for k, v in batch.get("targets", {}).items()}
        preds = model.predict(images, cached or None)
        for i, row in zip(batch["index"].tolist(), preds, strict=True):
            rows.append({"file": dataset.files[i], **row})
    keys = sorted({k for r in rows for k in r if k != "file"})
    means = {k: float(np.mean([r[k] for r in rows if k in r])) for k in keys}
    return means, rows


@torch.no_grad()
def feature_maps(model: DistillModel, image: torch.Tensor,
                 cached: dict[str, torch.Tensor] | None = None) -> dict[str, torch.Tensor]:
    """One base image (3, S, S) uint8 -> {"student": (C, gh, gw), <teacher>: (C_t, gh, gw)}."""
    from pe_dense.distill.views import Views

    x = model.resize(model.preprocess(image[None]))
    grid = (model.crop_size // model.student.patch_size,) * 2
    cached = {k: v[None] for k, v in (cached or {}).items()}
    targets = model.targets(x, Views.identity(1), grid, cached or None)
    (student,) = model.student.forward_intermediates(x, indices=[-1])
    return {"student": student[0], **{k: v[0] for k, v in targets.items()}}


def read_scalars(work_dir: str | os.PathLike) -> dict[str, tuple[list[int], list[float]]]:
    """All scalars logged by mmengine's LocalVisBackend under ``work_dir`` (every run,
    resumed ones included, later values win): name -> (steps, values) sorted by step.
    Validation records (``prefix/metric`` keys) get the training iteration they followed."""
    files = sorted(Path(work_dir).glob("*/vis_data/scalars.json"))
    if not files:
        raise FileNotFoundError(f"no */vis_data/scalars.json under {work_dir}: was it trained "
                                "with the LocalVisBackend?")
    series: dict[str, dict[int, float]] = defaultdict(dict)
    for path in files:
        last_train_step = 0
        for line in path.read_text().splitlines():
            if not line.strip():
                continue
            rec = json.loads(line)
            step = int(rec.get("step", rec.get("iter", 0)))
            if any("/" in k for k in rec):  # validation: mmengine logs step 0, use the iteration
                step = last_train_step
            else:
                last_train_step = step
            for key, value in rec.items():
                if key not in ("step", "iter", "epoch") and isinstance(value, (int, float)):
                    series[key][step] = float(value)
    return {k: (sorted(v), [v[s] for s in sorted(v)]) for k, v in series.items()}


def plot_training_curves(work_dir: str | os.PathLike, path: str | os.PathLike) -> Path:
    """Plot the per-step monitors (``<teacher>_cos``, ``<teacher>_corr``, losses) and the
    held-out ``distill/*`` metrics logged in ``work_dir`` to a PNG at ``path``."""
    from pe_dense.viz.plots import plot_curves

    scalars = read_scalars(work_dir)
    panels: dict[str, dict[str, tuple[list[int], list[float]]]] = defaultdict(dict)
    for key, series in scalars.items():
        if key.startswith("distill/"):
            metric = key.split("/", 1)[1]
            panels[metric.rsplit("_", 1)[1]][f"held-out {metric}"] = series
        elif key.endswith(("_cos", "_corr")):
            panels[key.rsplit("_", 1)[1]][f"train {key}"] = series
        elif key.startswith("loss"):
            panels["loss"][key] = series
    titles = {"cos": "mean cosine to teacher", "corr": "pairwise-similarity correlation",
              "loss": "losses"}
    ordered = {titles[k]: panels[k] for k in ("cos", "corr", "loss") if k in panels}
    if not ordered:
        raise ValueError(f"no distillation scalars in {work_dir}")
    plot_curves(ordered, str(path), title=str(work_dir),
                hlines={titles["cos"]: 0.9, titles["corr"]: 0.8})
    return Path(path)


@torch.no_grad()
def constant_baseline(model: DistillModel, dataset: torch.utils.data.Dataset,
                      device: str | torch.device = "cpu") -> dict[str, float]:
    """Scores of an image-independent predictor: for each image, the mean teacher target of
    the *other* images (leave-one-out), scored like the student.

    ``<teacher>_cos``: mean cosine between the mean target tokens and the image's target
    tokens; ``<teacher>_corr``: correlation between the mean pairwise target matrix and the
    image's. A student that does not beat these has learned only position-dependent,
    image-independent structure of the teacher.
    """
    from pe_dense.distill.losses import locality_target, mean_cosine
    from pe_dense.distill.views import Views

    if len(dataset) < 2:
        raise ValueError("the constant baseline needs at least 2 images")
    grid = (model.crop_size // model.student.patch_size,) * 2
    tokens: dict[str, list[torch.Tensor]] = defaultdict(list)
    for i in range(len(dataset)):
        item = dataset[i]
        x = model.resize(model.preprocess(item["image"][None].to(device)))
        cached = {k: v[None].to(device) for k, v in item.get("targets", {}).items()}
        for name, t in model.targets(x, Views.identity(1), grid, cached or None).items():
            tokens[name].append(t.flatten(2).transpose(1, 2)[0].float().cpu())
    out: dict[str, float] = {}
    n_tok = grid[0] * grid[1]
    off = ~torch.eye(n_tok, dtype=torch.bool)
    for name, cfg in model.teacher_cfgs.items():
        t = torch.stack(tokens[name])  # (M, N, C)
        m = t.shape[0]
        loo = (t.sum(0, keepdim=True) - t) / (m - 1)
        if "cosine" in cfg["losses"]:
            out[f"{name}_cos"] = float(np.mean([mean_cosine(loo[i:i + 1], t[i:i + 1]).item()
                                                for i in range(m)]))
        target = locality_target(t, cfg.get("temperature", 20.0))[:, off]  # (M, P)
        pred = (target.sum(0, keepdim=True) - target) / (m - 1)
        target = target - target.mean(1, keepdim=True)
        pred = pred - pred.mean(1, keepdim=True)
        corr = (target * pred).sum(1) / (target.norm(dim=1) * pred.norm(dim=1)).clamp_min(1e-12)
        out[f"{name}_corr"] = float(corr.mean())
    return out
