"""Frozen teachers that map the student's (augmented) input image to target maps on its grid.

Every teacher is an ``nn.Module`` with ``forward(images, grid) -> (B, C, gh, gw)``:
``images`` is the exact batch the student sees before masking, (B, 3, H, W) float in PE's
[-1, 1] (the model normalises its uint8 input once, with
:func:`pe_dense.backbone.inputs.normalize`, then crops, flips and jitters); ``grid`` is the
student's token grid. ``describe()`` returns the JSON-able settings recorded in a target cache
manifest, and ``out_channels`` the target width. Teachers are frozen
(:func:`pe_dense.utils.modules.freeze`). A teacher whose targets depend on which file an image
came from (ground-truth masks) sets ``needs_files = True`` and takes ``forward(images, grid,
files=paths)``; only the target cache writer (:mod:`pe_dense.distill.cache`) knows the paths, so
such a teacher is used through ``pe-dense distill-cache``.

Kinds (``build_teacher(dict(kind=...))``):
- ``"layer"`` (also ``"pe_layer"``): any backbone (a PE variant or ``timm/<name>``) truncated
  after block ``layer`` (:class:`LayerTeacher`), built here; the views are renormalised to its
  own input statistics;
- ``"sam2"``: SAM 2 / 2.1 raw mask logits for a grid of point prompts
  (:class:`pe_dense.distill.sam2_teacher.SAM2MaskTeacher`). Building the SAM 2 network needs
  the ``sam2`` package, which only :mod:`pe_dense.integrations.sam2` imports; callers pass its
  builder: ``build_teacher(cfg, builders={"sam2": build_sam2_teacher})``. The engine
  (``pe-dense distill``) and the ``distill-cache`` / ``distill-eval`` commands do this;
- ``"gt_masks"``: ground-truth instance masks answering the same point prompts as +/- ``logit``
  maps, a stand-in for a perfect SAM
  (:class:`pe_dense.distill.gt_teacher.GroundTruthMaskTeacher`), built here; cached only
  (``needs_files``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from pe_dense.backbone.contract import Backbone
from pe_dense.distill.views import resample_tokens
from pe_dense.utils.modules import freeze
from pe_dense.utils.seeding import seeded  # re-exported: older code imports it from here

__all__ = ["LayerTeacher", "PELayerTeacher", "build_teacher", "resample_tokens", "seeded",
           "TEACHER_KINDS", "LAYER_KINDS", "TeacherBuilder"]

log = logging.getLogger(__name__)

TEACHER_KINDS = ("layer", "pe_layer", "sam2", "gt_masks")
LAYER_KINDS = ("layer", "pe_layer")  # one kind, two names ("pe_layer": older configs)
_TRAINER_KEYS = ("name", "losses", "temperature", "project")

TeacherBuilder = Callable[..., nn.Module]
"""``builder(device=..., **teacher_cfg) -> frozen teacher``, the config without ``kind`` and the
trainer's keys (e.g. :func:`pe_dense.integrations.sam2.build_sam2_teacher`)."""


class LayerTeacher(nn.Module):
    """A frozen backbone truncated after block ``layer``; its patch tokens on the student grid.

    ``image_size=None`` resizes the input so the teacher's grid equals the student's grid
    (e.g. a patch-14 teacher under a patch-16 student sees 14/16 of the pixels); an integer
    resizes the longer side to about that many pixels (a multiple of the teacher's patch) and
    the teacher's tokens are resampled to the student grid. ``norm`` applies ``ln_post``.
    """

    def __init__(self, backbone: Backbone, layer: int, image_size: int | None = None,
                 norm: bool = False, info: dict[str, Any] | None = None) -> None:
        super().__init__()
        self.layer = layer % backbone.num_layers
        self.backbone = backbone.truncate(self.layer)
        self.image_size = image_size
        self.norm = norm
        self.out_channels = backbone.embed_dim
        self._info = dict(info or {})
        freeze(self)  # no gradients, and eval mode even under a parent's train()

    def describe(self) -> dict[str, Any]:
        return {"kind": "layer", **self._info, "layer": self.layer,
                "image_size": self.image_size, "norm": self.norm,
                "out_channels": self.out_channels}

    def _input_size(self, h: int, w: int, grid: tuple[int, int]) -> tuple[int, int]:
        p = self.backbone.patch_size
        if self.image_size is None:
            return grid[0] * p, grid[1] * p
        s = self.image_size / max(h, w)
        return max(p, round(h * s / p) * p), max(p, round(w * s / p) * p)

    @torch.no_grad()
    def forward(self, images: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
        """images: (B, 3, H, W) in [-1, 1] -> (B, C, gh, gw) float32 tokens of block ``layer``."""
        size = self._input_size(*images.shape[-2:], grid)
        if tuple(images.shape[-2:]) != size:
            images = F.interpolate(images, size=size, mode="bilinear", align_corners=False)
        (maps,) = self.backbone.forward_intermediates(self.backbone.renormalize(images),
                                                      indices=[self.layer], norm=self.norm)
        return resample_tokens(maps.float(), grid)


PELayerTeacher = LayerTeacher  # the name of older code


def build_teacher(cfg: dict[str, Any], device: str | torch.device = "cpu",
                  builders: Mapping[str, TeacherBuilder] | None = None) -> nn.Module:
    """Build a frozen teacher from a config dict.

    ``layer`` (alias ``pe_layer``): ``model`` (a PE variant or ``timm/<name>``), ``layer``
    (0-based block), optional ``weights``, ``image_size``, ``norm``, ``seed`` (fixes random init
    when ``weights`` is None) and ``overrides`` (``create_backbone`` keyword arguments).
    ``gt_masks``: ``masks`` (folder of instance-id PNGs), ``points_per_side``, ``logit``
    (:func:`pe_dense.distill.gt_teacher.build_gt_teacher`).
    Other kinds (``sam2``) are built by ``builders[kind](device=device, **cfg)``, e.g.
    ``builders={"sam2": pe_dense.integrations.sam2.build_sam2_teacher}`` (see its options).
    Keys ``name``, ``losses``, ``temperature`` and ``project`` belong to the trainer and are
    ignored here.
    """
    cfg = {k: v for k, v in cfg.items() if k not in _TRAINER_KEYS}
    kind = cfg.pop("kind", None)
    if kind in LAYER_KINDS:
        return _build_layer_teacher(cfg, kind).to(device)
    if kind == "gt_masks":
        from pe_dense.distill.gt_teacher import build_gt_teacher

        return build_gt_teacher(cfg).to(device)
    if builders is not None and kind in builders:
        return builders[kind](device=device, **cfg)
    if kind == "sam2":
        raise ValueError("a 'sam2' teacher is built by pe_dense.integrations.sam2: call "
                         "build_teacher(cfg, builders={'sam2': build_sam2_teacher}) (pe-dense "
                         "distill, distill-cache and distill-eval pass it for you)")
    raise ValueError(f"unknown teacher kind {kind!r}; use one of {TEACHER_KINDS}")


def _build_layer_teacher(cfg: dict[str, Any], kind: str = "layer") -> LayerTeacher:
    from pe_dense.backbone.factory import create_backbone

    missing = [k for k in ("model", "layer") if k not in cfg]
    if missing:
        raise ValueError(f"layer teacher needs {missing} (e.g. model='PE-Core-G14-448', "
                         "layer=40, or model='timm/vit_base_patch16_dinov3', layer=-1)")
    seed = cfg.pop("seed", 0)
    with seeded(seed):
        backbone = create_backbone(cfg["model"], weights=cfg.get("weights"),
                                   **cfg.get("overrides", {}))
    if cfg.get("weights") is None:
        log.warning("layer teacher %s has random weights (seed %s)", cfg["model"], seed)
    info = {"kind": kind, "model": cfg["model"], "weights": _source_name(cfg.get("weights")),
            "seed": seed,
            "overrides": cfg.get("overrides", {})}
    return LayerTeacher(backbone, cfg["layer"], image_size=cfg.get("image_size"),
                          norm=cfg.get("norm", False), info=info)


def _source_name(weights: Any) -> str | None:
    if weights is None:
        return None
    return weights if isinstance(weights, str) else "<state dict>"
