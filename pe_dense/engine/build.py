"""Build an evaluation-ready task model from an mmengine config and a training checkpoint.

The one loader behind :class:`pe_dense.engine.predictor.Predictor` and the demo's
``--config --checkpoint``: the config's ``model`` is built from the registries, the checkpoint
is loaded strictly (a checkpoint of another config is a ``ValueError`` listing the mismatching
keys), and the class names come from the checkpoint's dataset metadata or the config.
"""

from __future__ import annotations

import copy
import os
from dataclasses import dataclass, field
from typing import Any

import torch

from pe_dense.backbone.checkpoints import read_model_state_dict
from pe_dense.engine import registry
from pe_dense.engine.runner import check_checkpoint_model, load_config, load_model_weights
from pe_dense.utils.device import pick_device

__all__ = ["LoadedModel", "load_model", "class_names_of"]


@dataclass
class LoadedModel:
    """``model`` in eval mode on ``device``; ``task`` its ``task`` attribute ("detection",
    "segmentation", "depth" or None); ``class_names`` from the checkpoint or config (or None);
    ``cfg`` the loaded mmengine Config; ``meta`` the checkpoint's ``meta`` dict."""

    model: torch.nn.Module
    cfg: Any
    class_names: tuple[str, ...] | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def task(self) -> str | None:
        return getattr(self.model, "task", None)


def class_names_of(cfg: Any, meta: dict[str, Any] | None = None) -> tuple[str, ...] | None:
    """Class names from checkpoint ``meta["dataset_meta"]["classes"]``, else the config's
    ``model.class_names``, ``class_names`` or ``test_dataloader.dataset.class_names``."""
    names = ((meta or {}).get("dataset_meta") or {}).get("classes")
    if names:
        return tuple(names)
    for getter in (lambda: cfg.model.class_names, lambda: cfg.class_names,
                   lambda: cfg.test_dataloader.dataset.class_names):
        try:
            names = getter()
        except (AttributeError, KeyError):
            continue
        if names:
            return tuple(names)
    return None


def _model_spec(cfg: Any, drop_backbone_weights: bool) -> dict[str, Any]:
    """``cfg.model`` as a plain dict; the backbone's ``weights`` entry removed when the
    checkpoint holds every weight (so no download happens)."""
    spec = cfg.model.to_dict() if hasattr(cfg.model, "to_dict") else copy.deepcopy(dict(cfg.model))
    backbone = spec.get("backbone")
    if drop_backbone_weights and isinstance(backbone, dict) and backbone.get("weights"):
        spec["backbone"] = {**backbone, "weights": None}
    return spec


def load_model(config: str | os.PathLike | Any, checkpoint: str | os.PathLike | None = None,
               device: str | torch.device | None = "auto", cfg_options: Any = None,
               class_names: Any = None) -> LoadedModel:
    """config (path or Config) + checkpoint -> :class:`LoadedModel` in eval mode on ``device``
    ("auto": CUDA when available).

    ``checkpoint``: a ``pe-dense train`` checkpoint, loaded strictly (``FileNotFoundError`` if
    missing; a ``ValueError`` saying what the file is when it is no such checkpoint, naming
    both models when it holds another task model, listing the mismatching keys when it belongs
    to another config of the same model); None
    keeps the config's own weights (random, or ``model.backbone.weights``).
    """
    cfg = load_config(config, cfg_options)
    meta: dict[str, Any] = {}
    state_dict = None
    name = str(config) if isinstance(config, (str, os.PathLike)) else None
    if checkpoint is not None:  # a file, or a sharded (FSDP) checkpoint folder
        state_dict, meta, info = read_model_state_dict(checkpoint, "test", name)
        check_checkpoint_model(cfg, info)
    spec = _model_spec(cfg, drop_backbone_weights=checkpoint is not None)
    with registry.MODELS.switch_scope_and_registry(cfg.get("default_scope")) as models:
        model = models.build(spec)
    if checkpoint is not None:
        load_model_weights(model, checkpoint, state_dict, config=name)
    from pe_dense.engine.tasks.detection import configure_inputs

    configure_inputs(model, cfg)  # predict_images: the config's test resize and padding
    model.to(pick_device(device)).eval()
    names = tuple(class_names) if class_names else class_names_of(cfg, meta)
    return LoadedModel(model, cfg, names, meta or {})
