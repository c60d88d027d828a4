"""The distillation task: student backbone, frozen teachers, alignment losses (a plain
``nn.Module``).

Input: base images ``(B, 3, S, S)`` uint8 RGB (:class:`pe_dense.distill.data.DistillImageDataset`),
normalised once at entry (:meth:`DistillModel.preprocess`, i.e.
:func:`pe_dense.backbone.inputs.normalize`: PE's [-1, 1] is the pixel space of the views; the
student and every layer teacher renormalise to their own input statistics with
``Backbone.renormalize``, an identity for PE models). Per training step (:meth:`DistillModel.loss`),
with randomness drawn from a generator seeded by ``(seed, rank, step)`` so that ``--resume``
reproduces the next step exactly:

1. a random view (crop box, flip, colour jitter) of each base image -> student input
   ``(B, 3, crop_size, crop_size)``; online teachers see this same image, cached teacher maps
   are resampled through the same box and flip;
2. optional 2 x 2 block masking of the student's input (:mod:`pe_dense.distill.masking`);
3. student tokens of its last block, ``forward_intermediates(x, [-1], output_fmt="NLC")``;
4. per teacher, the weighted losses named in its ``losses`` dict: ``cosine`` (through the
   teacher's projection) and ``locality`` (pairwise, with ``temperature``; None = plain cosine).

Logged per step: ``loss_<teacher>_<loss>`` (weighted, summed into the loss), and unweighted
monitors ``<teacher>_cos`` (mean cosine) and ``<teacher>_corr`` (pairwise correlation).
The mmengine model (registered as ``"DistillModel"``) is made in
:mod:`pe_dense.engine.tasks.distill`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from pe_dense.backbone.factory import describe_backbone
from pe_dense.backbone.inputs import normalize
from pe_dense.backbone.weights import save_checkpoint
from pe_dense.distill.losses import cosine_loss, locality_loss, mean_cosine, pairwise_correlation
from pe_dense.distill.masking import apply_token_mask, block_mask
from pe_dense.distill.student import build_student, student_state_dict
from pe_dense.distill.teachers import LAYER_KINDS, TeacherBuilder, build_teacher
from pe_dense.distill.views import Views, color_jitter, resample_box, sample_views
from pe_dense.utils.seeding import seeded

__all__ = ["DistillModel", "teacher_channels", "export_run"]

log = logging.getLogger(__name__)

LOSS_NAMES = ("cosine", "locality")


def teacher_channels(cfg: dict[str, Any]) -> int:
    """Target channels of a teacher config without building it."""
    if cfg.get("kind") in LAYER_KINDS:
        return describe_backbone(cfg["model"], **cfg.get("overrides", {}))["embed_dim"]
    if cfg.get("kind") in ("sam2", "gt_masks"):
        return int(cfg.get("points_per_side", 32)) ** 2
    raise ValueError(f"unknown teacher kind {cfg.get('kind')!r}; use 'layer' (any backbone; "
                     "alias 'pe_layer'), 'sam2' or 'gt_masks'")


def _check_teacher_cfg(cfg: dict[str, Any]) -> None:
    if "name" not in cfg or "kind" not in cfg:
        raise ValueError(f"each teacher needs a 'name' and a 'kind', got {cfg}")
    losses = cfg.get("losses", {})
    unknown = sorted(set(losses) - set(LOSS_NAMES))
    if unknown or not losses:
        raise ValueError(f"teacher {cfg['name']!r}: losses {losses} must map some of "
                         f"{LOSS_NAMES} to weights, e.g. dict(cosine=1.0)")


class DistillModel(nn.Module):
    """Student + teachers. See the module docstring for the step.

    ``student``: ``dict(model=name, weights=None, seed=0, **overrides)``: any backbone
    (a PE variant with its overrides, e.g. ``drop_path=0.4, ls_init_value=0.1``, or
    ``timm/<name>`` with ``timm.create_model`` arguments). ``teachers``: list of teacher configs
    (see
    :func:`pe_dense.distill.teachers.build_teacher`) with ``name``, ``losses`` (loss ->
    weight), ``temperature`` (locality, default 20; None = no exp) and ``project`` (cosine: None
    = a Linear layer only when widths differ, True = always, False = never). ``crop_size``:
    student input pixels. ``views``: ``dict(scale=(0.35, 1.0), flip=True, jitter=0.3)``;
    ``mask``: ``dict(ratio=0.75, block=2)`` or None. ``teacher_builders``: builders of teacher
    kinds other than ``pe_layer`` (``{"sam2": pe_dense.integrations.sam2.build_sam2_teacher}``;
    the engine passes it), used when a teacher is first needed online.

    Stages: :meth:`preprocess` (uint8 -> [-1, 1]), :meth:`encode` (student tokens);
    :meth:`forward` = tokens of the whole image resized to ``crop_size``.
    """

    task = "distillation"

    def __init__(self, student: dict[str, Any], teachers: Sequence[dict[str, Any]],
                 crop_size: int = 448, views: dict[str, Any] | None = None,
                 mask: dict[str, Any] | None = None, seed: int = 0,
                 teacher_builders: Mapping[str, TeacherBuilder] | None = None) -> None:
        super().__init__()
        _check_teachers(teachers)
        self.student_cfg = dict(student)
        self.variant = self.student_cfg["model"]
        self.student = build_student(**{"seed": seed, **self.student_cfg})
        p = self.student.patch_size
        if crop_size % p:
            raise ValueError(f"crop_size {crop_size} is not a multiple of the student's patch {p}")
        self.crop_size = crop_size
        self.teacher_cfgs = {t["name"]: dict(t) for t in teachers}
        self.views = {"scale": (0.35, 1.0), "flip": True, "jitter": 0.3, **(views or {})}
        self.mask = dict(mask) if mask else None
        self.seed = seed
        self.teacher_builders = dict(teacher_builders or {})
        self.proj = nn.ModuleDict()
        with seeded(seed + 1):  # reproducible without a global seed (e.g. distill-eval)
            for name, cfg in self.teacher_cfgs.items():
                self.proj[name] = self._projection(cfg)
        self._teachers: dict[str, nn.Module] = {}  # not submodules: frozen, not checkpointed
        self.register_buffer("step", torch.zeros((), dtype=torch.long))

    def _projection(self, cfg: dict[str, Any]) -> nn.Module:
        width, c_t = self.student.embed_dim, teacher_channels(cfg)
        project = cfg.get("project")
        if "cosine" not in cfg["losses"] or project is False:
            if "cosine" in cfg["losses"] and width != c_t:
                raise ValueError(f"teacher {cfg['name']!r} has {c_t} channels, the student "
                                 f"{width}: the cosine loss needs project=True (or None)")
            return nn.Identity()
        return nn.Linear(width, c_t) if project or width != c_t else nn.Identity()

    # ------------------------------------------------------------------ teachers and targets

    def teacher(self, name: str) -> nn.Module:
        """The frozen teacher ``name``, built on first use on the student's device."""
        device = self.step.device
        if name not in self._teachers:
            self._teachers[name] = build_teacher(self.teacher_cfgs[name], device=device,
                                                 builders=self.teacher_builders)
        return self._teachers[name].to(device)

    def targets(self, x: torch.Tensor, views: Views, grid: tuple[int, int],
                cached: Mapping[str, torch.Tensor] | None = None) -> dict[str, torch.Tensor]:
        """Teacher maps (B, C, gh, gw) for the student's view ``x`` (B, 3, H, W) in [-1, 1]:
        cached maps (B, C, h, w) of the base images are cropped with ``views``, the other
        teachers run on ``x``."""
        out = {}
        for name in self.teacher_cfgs:
            if cached is not None and name in cached:
                out[name] = resample_box(cached[name].float(), views, grid)
            else:
                out[name] = self.teacher(name)(x, grid).float()
        return out

    # ------------------------------------------------------------------ stages

    def preprocess(self, images: torch.Tensor, sizes: Sequence[tuple[int, int]] | None = None
                   ) -> torch.Tensor:
        """(B, 3, H, W) uint8 RGB -> (B, 3, H, W) float32 in [-1, 1]."""
        return normalize(images, sizes)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) in [-1, 1] -> the student's last-block patch tokens (B, N, C) (the
        views are renormalised to the student's own input statistics first)."""
        return self.student.forward_intermediates(self.student.renormalize(x), indices=[-1],
                                                  output_fmt="NLC")[0]

    def resize(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) in [-1, 1] -> the whole image at (B, 3, crop_size, crop_size)."""
        return resample_box(x, Views.identity(x.shape[0]), (self.crop_size,) * 2)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """images: (B, 3, S, S) uint8 base images -> student tokens (B, N, C) of the whole
        image resized to ``crop_size``."""
        return self.encode(self.resize(self.preprocess(images)))

    # ------------------------------------------------------------------ training and evaluation

    def _step_seed(self, step: int) -> int:
        return (self.seed * 1_000_003 + _rank() * 7_919 + step * 104_729) % (2**62)

    def loss(self, images: torch.Tensor, samples: Mapping[str, torch.Tensor] | None = None
             ) -> dict[str, torch.Tensor]:
        """One training step's losses and monitors. images: (B, 3, S, S) uint8 base images;
        samples: cached teacher maps ``{teacher: (B, C, h, w)}`` of those images, or None."""
        x = self.preprocess(images)
        step_seed = self._step_seed(int(self.step))
        self.step += 1
        gen = torch.Generator().manual_seed(step_seed)
        b = x.shape[0]
        size = (self.crop_size, self.crop_size)
        views = sample_views(b, scale=tuple(self.views["scale"]), flip=self.views["flip"],
                             generator=gen)
        x = color_jitter(resample_box(x, views, size), self.views["jitter"], generator=gen)
        grid = (size[0] // self.student.patch_size, size[1] // self.student.patch_size)
        targets = self.targets(x, views, grid, samples)
        if self.mask:
            mask = block_mask(b, grid, generator=gen, **self.mask)
            x = apply_token_mask(x, mask, self.student.patch_size)
        devices = [x.device] if x.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):  # drop path, reproducible per step
            torch.manual_seed(step_seed)
            feats = self.encode(x)
        return self._losses(feats, targets)

    def _losses(self, feats: torch.Tensor, targets: dict[str, torch.Tensor]
                ) -> dict[str, torch.Tensor]:
        out: dict[str, torch.Tensor] = {}
        for name, cfg in self.teacher_cfgs.items():
            t = targets[name].flatten(2).transpose(1, 2)  # (B, N, C_t)
            temperature = cfg.get("temperature", 20.0)
            for loss_name, weight in cfg["losses"].items():
                if loss_name == "cosine":
                    value = cosine_loss(self.proj[name](feats), t)
                else:
                    value = locality_loss(feats, t, temperature)
                out[f"loss_{name}_{loss_name}"] = weight * value
            with torch.no_grad():
                if "cosine" in cfg["losses"]:
                    out[f"{name}_cos"] = mean_cosine(self.proj[name](feats), t)
                out[f"{name}_corr"] = pairwise_correlation(feats, t, temperature).mean()
        return out

    @torch.no_grad()
    def predict(self, images: torch.Tensor, samples: Mapping[str, torch.Tensor] | None = None
                ) -> list[dict[str, float]]:
        """Per-image alignment on the whole image (no crop, no mask): ``<teacher>_cos`` and
        ``<teacher>_corr`` for each teacher. images: (B, 3, S, S) uint8; samples: cached maps."""
        x = self.resize(self.preprocess(images))
        grid = (self.crop_size // self.student.patch_size,) * 2
        targets = self.targets(x, Views.identity(x.shape[0]), grid, samples)
        return self.alignment(self.encode(x), targets)

    def alignment(self, feats: torch.Tensor, targets: dict[str, torch.Tensor]
                  ) -> list[dict[str, float]]:
        """feats (B, N, C) and teacher maps (B, C_t, gh, gw) -> per-image metric dicts."""
        rows: list[dict[str, float]] = [{} for _ in range(feats.shape[0])]
        for name, cfg in self.teacher_cfgs.items():
            t = targets[name].flatten(2).transpose(1, 2)
            corr = pairwise_correlation(feats, t, cfg.get("temperature", 20.0))
            cos = None
            if "cosine" in cfg["losses"]:
                s = self.proj[name](feats)
                cos = torch.nn.functional.cosine_similarity(s, t, dim=-1).mean(1)
            for i, row in enumerate(rows):
                row[f"{name}_corr"] = float(corr[i])
                if cos is not None:
                    row[f"{name}_cos"] = float(cos[i])
        return rows

    def student_state_dict(self) -> dict[str, torch.Tensor]:
        """The student in the official layout of its variant (see :mod:`.student`)."""
        return student_state_dict(self.student, self.variant)


def _check_teachers(teachers: Sequence[dict[str, Any]]) -> None:
    if not teachers:
        raise ValueError("DistillModel needs at least one teacher")
    for cfg in teachers:
        _check_teacher_cfg(cfg)
    names = [t["name"] for t in teachers]
    if len(set(names)) != len(names):
        raise ValueError(f"teacher names must be unique, got {names}")


def _rank() -> int:
    """This process's rank in the default process group (0 when not distributed)."""
    dist = torch.distributed
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def export_run(model: nn.Module, out_dir: str | Path) -> Path:
    """Write ``student.pt`` (official layout, ``create_backbone(variant, weights=...)``) and
    ``distill_heads.pt`` (projections and the model config) for a (possibly wrapped)
    DistillModel into ``out_dir``; returns the student's path."""
    model = getattr(model, "module", model)
    out = Path(out_dir)
    path = out / "student.pt"
    save_checkpoint(model.student_state_dict(), path)
    plain = json.loads(json.dumps({"student": model.student_cfg, "teachers": model.teacher_cfgs},
                                  default=str))  # plain dicts: weights-only loadable
    heads = {"variant": model.variant, **plain, "crop_size": model.crop_size,
             "step": int(model.step),
             "proj": {k: v.detach().cpu() for k, v in model.proj.state_dict().items()}}
    save_checkpoint(heads, out / "distill_heads.pt")
    return path
