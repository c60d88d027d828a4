"""The distillation task as an mmengine model: student PEViT, frozen teachers, alignment losses.

Per training step (``mode="loss"``), with randomness drawn from a generator seeded by
``(seed, rank, step)`` so that ``--resume`` reproduces the next step exactly:

1. a random view (crop box, flip, colour jitter) of each base image -> student input
   ``(B, 3, crop_size, crop_size)``; online teachers see this same image, cached teacher maps
   are resampled through the same box and flip;
2. optional 2 x 2 block masking of the student's input (:mod:`pe_dense.distill.masking`);
3. student tokens of its last block, ``forward_intermediates(x, [-1], output_fmt="NLC")``;
4. per teacher, the weighted losses named in its ``losses`` dict: ``cosine`` (through the
   teacher's projection) and ``locality`` (pairwise, with ``temperature``; None = plain cosine).

Logged per step: ``loss_<teacher>_<loss>`` (weighted, summed into the loss), and unweighted
monitors ``<teacher>_cos`` (mean cosine) and ``<teacher>_corr`` (pairwise correlation).
"""

from __future__ import annotations

import logging
from typing import Any

import torch
from mmengine.dist import get_rank
from mmengine.model import BaseModel
from torch import nn

from pe_dense.backbone.variants import get_variant
from pe_dense.distill.losses import cosine_loss, locality_loss, mean_cosine, pairwise_correlation
from pe_dense.distill.masking import apply_token_mask, block_mask
from pe_dense.distill.student import build_student, student_state_dict
from pe_dense.distill.teachers import build_teacher, seeded
from pe_dense.distill.views import Views, color_jitter, resample_box, sample_views
from pe_dense.engine.registry import MODELS

__all__ = ["DistillModel", "teacher_channels"]

log = logging.getLogger(__name__)

LOSS_NAMES = ("cosine", "locality")


def teacher_channels(cfg: dict[str, Any]) -> int:
    """Target channels of a teacher config without building it."""
    if cfg.get("kind") == "pe_layer":
        return get_variant(cfg["model"]).width
    if cfg.get("kind") == "sam2":
        return int(cfg.get("points_per_side", 32)) ** 2
    raise ValueError(f"unknown teacher kind {cfg.get('kind')!r}; use 'pe_layer' or 'sam2'")


def _check_teacher_cfg(cfg: dict[str, Any]) -> None:
    if "name" not in cfg or "kind" not in cfg:
        raise ValueError(f"each teacher needs a 'name' and a 'kind', got {cfg}")
    losses = cfg.get("losses", {})
    unknown = sorted(set(losses) - set(LOSS_NAMES))
    if unknown or not losses:
        raise ValueError(f"teacher {cfg['name']!r}: losses {losses} must map some of "
                         f"{LOSS_NAMES} to weights, e.g. dict(cosine=1.0)")


@MODELS.register_module()
class DistillModel(BaseModel):
    """Student + teachers. See the module docstring for the step.

    ``student``: ``dict(model=variant, weights=None, seed=0, **PEViT overrides)`` (e.g.
    ``drop_path=0.4, ls_init_value=0.1``). ``teachers``: list of teacher configs (see
    :func:`pe_dense.distill.teachers.build_teacher`) with ``name``, ``losses`` (loss ->
    weight), ``temperature`` (locality, default 20; None = no exp) and ``project`` (cosine: None
    = a Linear layer only when widths differ, True = always, False = never). ``crop_size``:
    student input pixels. ``views``: ``dict(scale=(0.35, 1.0), flip=True, jitter=0.3)``;
    ``mask``: ``dict(ratio=0.75, block=2)`` or None.
    """

    task = "distillation"

    def __init__(self, student: dict[str, Any], teachers: list[dict[str, Any]],
                 crop_size: int = 448, views: dict[str, Any] | None = None,
                 mask: dict[str, Any] | None = None, seed: int = 0,
                 data_preprocessor: dict | None = None, init_cfg: dict | None = None) -> None:
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        if not teachers:
            raise ValueError("DistillModel needs at least one teacher")
        for cfg in teachers:
            _check_teacher_cfg(cfg)
        names = [t["name"] for t in teachers]
        if len(set(names)) != len(names):
            raise ValueError(f"teacher names must be unique, got {names}")
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
            self._teachers[name] = build_teacher(self.teacher_cfgs[name], device=device)
        return self._teachers[name].to(device)

    def targets(self, images: torch.Tensor, views: Views, grid: tuple[int, int],
                cached: dict[str, torch.Tensor] | None = None) -> dict[str, torch.Tensor]:
        """Teacher maps (B, C, gh, gw) for the student's view ``images`` (B, 3, H, W):
        cached maps (B, C, h, w) of the base images are cropped with ``views``, the other
        teachers run on ``images``."""
        out = {}
        for name in self.teacher_cfgs:
            if cached is not None and name in cached:
                out[name] = resample_box(cached[name].float(), views, grid)
            else:
                out[name] = self.teacher(name)(images, grid).float()
        return out

    # ------------------------------------------------------------------ forward

    def student_tokens(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) -> last-block patch tokens (B, N, C)."""
        return self.student.forward_intermediates(images, indices=[-1], output_fmt="NLC")[0]

    def forward(self, image: torch.Tensor, targets: dict[str, torch.Tensor] | None = None,
                mode: str = "tensor", **unused: Any) -> Any:
        """image: (B, 3, S, S) base images in [-1, 1]; targets: cached teacher maps."""
        if mode == "loss":
            return self.loss(image, targets)
        if mode == "predict":
            return self.predict(image, targets)
        if mode == "tensor":
            return self.student_tokens(self._resize(image))
        raise ValueError(f"mode={mode!r} is not one of 'loss', 'predict', 'tensor'")

    def _resize(self, image: torch.Tensor) -> torch.Tensor:
        return resample_box(image, Views.identity(image.shape[0]), (self.crop_size,) * 2)

    def _step_seed(self, step: int) -> int:
        return (self.seed * 1_000_003 + get_rank() * 7_919 + step * 104_729) % (2**62)

    def loss(self, image: torch.Tensor, cached: dict[str, torch.Tensor] | None = None
             ) -> dict[str, torch.Tensor]:
        step_seed = self._step_seed(int(self.step))
        self.step += 1
        gen = torch.Generator().manual_seed(step_seed)
        b = image.shape[0]
        size = (self.crop_size, self.crop_size)
        views = sample_views(b, scale=tuple(self.views["scale"]), flip=self.views["flip"],
                             generator=gen)
        x = color_jitter(resample_box(image, views, size), self.views["jitter"], generator=gen)
        grid = (size[0] // self.student.patch_size, size[1] // self.student.patch_size)
        targets = self.targets(x, views, grid, cached)
        if self.mask:
            mask = block_mask(b, grid, generator=gen, **self.mask)
            x = apply_token_mask(x, mask, self.student.patch_size)
        devices = [x.device] if x.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):  # drop path, reproducible per step
            torch.manual_seed(step_seed)
            feats = self.student_tokens(x)
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
    def predict(self, image: torch.Tensor, cached: dict[str, torch.Tensor] | None = None
                ) -> list[dict[str, float]]:
        """Per-image alignment on the whole image (no crop, no mask): ``<teacher>_cos`` and
        ``<teacher>_corr`` for each teacher."""
        x = self._resize(image)
        grid = (self.crop_size // self.student.patch_size,) * 2
        targets = self.targets(x, Views.identity(x.shape[0]), grid, cached)
        return self.alignment(self.student_tokens(x), targets)

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
