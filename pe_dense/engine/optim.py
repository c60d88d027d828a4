"""Layer-wise learning-rate decay for any backbone, as an mmengine optimizer constructor.

Every :class:`~pe_dense.backbone.contract.Backbone` found inside the model gets layer ids by
parameter name from its own ``layer_id`` (the contract's rule: embedding 0, block ``i``
``i + 1``, everything else ``num_layers + 1``); the lr multiplier is
``decay ** (num_layers + 1 - layer_id)``, the default decay per depth that of the ViTDet presets
(:func:`pe_dense.backbone.variants.default_layer_decay`). Weight decay is 0 for 1-D parameters
(norms, biases, LayerScale) and the backbone's ``no_weight_decay()`` names (position and class
embeddings).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from typing import Any

from mmengine.optim import OptimWrapper
from mmengine.registry import OPTIM_WRAPPERS, OPTIMIZERS
from torch import nn

from pe_dense.backbone.contract import Backbone
from pe_dense.backbone.variants import default_layer_decay
from pe_dense.engine.registry import OPTIM_WRAPPER_CONSTRUCTORS

__all__ = ["LayerDecayOptimWrapperConstructor", "param_groups"]

log = logging.getLogger(__name__)


def param_groups(model: nn.Module, lr: float, weight_decay: float,
                 layer_decay: float | None = None) -> list[dict[str, Any]]:
    """Optimizer parameter groups with ``lr``/``weight_decay`` scaled per parameter.

    ``layer_decay=None`` uses :func:`default_layer_decay` of the deepest backbone's depth; 1.0
    turns decay off. Groups carry ``lr_scale`` and ``layer_id`` for logging.
    """
    backbones = {prefix: m for prefix, m in model.named_modules() if isinstance(m, Backbone)}
    depth = max((m.num_layers for m in backbones.values()), default=0)
    if layer_decay is None:
        layer_decay = default_layer_decay(depth) if backbones else 1.0
    decay = layer_decay
    groups: dict[tuple[int, bool], dict[str, Any]] = defaultdict(dict)
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        lid, no_wd = depth + 1, param.ndim <= 1
        for prefix, vit in backbones.items():
            if name.startswith(f"{prefix}.") or not prefix:
                local = name[len(prefix) + 1:] if prefix else name
                lid = vit.layer_id(local)
                no_wd = no_wd or local in vit.no_weight_decay()
                break
        group = groups[(lid, no_wd)]
        if not group:
            scale = decay ** (depth + 1 - lid)
            group.update(params=[], names=[], layer_id=lid, lr_scale=scale, lr=lr * scale,
                         weight_decay=0.0 if no_wd else weight_decay)
        group["params"].append(param)
        group["names"].append(name)
    return [groups[k] for k in sorted(groups)]


@OPTIM_WRAPPER_CONSTRUCTORS.register_module()
class LayerDecayOptimWrapperConstructor:
    """``optim_wrapper = dict(constructor="LayerDecayOptimWrapperConstructor",
    optimizer=dict(type="AdamW", lr=1e-4, weight_decay=0.1), paramwise_cfg=dict(layer_decay=0.7))``

    ``paramwise_cfg.layer_decay``: None (default) picks the per-variant value
    (:func:`default_layer_decay`). Other ``optim_wrapper`` keys (``type``, ``clip_grad``,
    ``accumulative_counts``) go to the mmengine wrapper.
    """

    def __init__(self, optim_wrapper_cfg: dict, paramwise_cfg: dict | None = None) -> None:
        cfg = dict(optim_wrapper_cfg)
        if "optimizer" not in cfg:
            raise ValueError("optim_wrapper needs an 'optimizer' dict, e.g. "
                             "dict(type='AdamW', lr=1e-4, weight_decay=0.1)")
        self.optimizer_cfg = dict(cfg.pop("optimizer"))
        self.wrapper_cfg = cfg
        paramwise_cfg = dict(paramwise_cfg or {})
        self.layer_decay = paramwise_cfg.pop("layer_decay", None)
        if paramwise_cfg:
            raise ValueError(f"unknown paramwise_cfg keys {sorted(paramwise_cfg)}; "
                             "LayerDecayOptimWrapperConstructor accepts only 'layer_decay'")

    def __call__(self, model: nn.Module) -> OptimWrapper:
        model = getattr(model, "module", model)
        optimizer_cfg = dict(self.optimizer_cfg)
        lr = optimizer_cfg.get("lr")
        if lr is None:
            raise ValueError("optimizer config needs an 'lr'")
        groups = param_groups(model, lr, optimizer_cfg.get("weight_decay", 0.0), self.layer_decay)
        for g in groups:
            log.debug("layer %d: lr x%.4g, wd %g, %d tensors", g["layer_id"], g["lr_scale"],
                      g["weight_decay"], len(g["params"]))
            del g["names"]
        optimizer_cfg["params"] = groups
        optimizer = OPTIMIZERS.build(optimizer_cfg)
        wrapper_cfg = {"type": "OptimWrapper", **self.wrapper_cfg}
        return OPTIM_WRAPPERS.build(wrapper_cfg, default_args={"optimizer": optimizer})
