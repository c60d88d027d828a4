"""pe_dense: dense prediction on Perception Encoder (PE-Spatial) features.

Public API::

    import pe_dense
    pe_dense.list_models("Spatial")
    model = pe_dense.create_backbone("PE-Spatial-B16-512", weights="path/to/PE-Spatial-B16-512.pt")
    maps = model.forward_intermediates(images, indices=(3, 7, 11))

The names below are imported on first use (PEP 562), so ``import pe_dense`` (and the command
line's ``--help``) does not import torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pe_dense.backbone.clip import create_clip
    from pe_dense.backbone.contract import Backbone
    from pe_dense.backbone.factory import create_backbone
    from pe_dense.backbone.pe_vit import PEViT
    from pe_dense.backbone.variants import VARIANTS, PEConfig, get_variant, list_models
    from pe_dense.backbone.weights import (
        LoadReport,
        WeightLoadError,
        convert_state_dict,
        load_weights,
    )

# public name -> the module that defines it
_LAZY = {
    "create_backbone": "pe_dense.backbone.factory",
    "Backbone": "pe_dense.backbone.contract",
    "create_clip": "pe_dense.backbone.clip",
    "PEViT": "pe_dense.backbone.pe_vit",
    "VARIANTS": "pe_dense.backbone.variants",
    "PEConfig": "pe_dense.backbone.variants",
    "get_variant": "pe_dense.backbone.variants",
    "list_models": "pe_dense.backbone.variants",
    "LoadReport": "pe_dense.backbone.weights",
    "WeightLoadError": "pe_dense.backbone.weights",
    "convert_state_dict": "pe_dense.backbone.weights",
    "load_weights": "pe_dense.backbone.weights",
}

__all__ = [
    "Backbone", "PEViT", "PEConfig", "VARIANTS", "LoadReport", "WeightLoadError", "create_backbone",
    "create_clip",
    "convert_state_dict", "get_variant", "list_models", "load_weights",
]
__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'pe_dense' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
