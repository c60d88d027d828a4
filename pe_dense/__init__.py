"""pe_dense: dense prediction on Perception Encoder (PE-Spatial) features.

Public API::

    import pe_dense
    pe_dense.list_models("Spatial")
    model = pe_dense.create_backbone("PE-Spatial-B16-512", weights="path/to/PE-Spatial-B16-512.pt")
    maps = model.forward_intermediates(images, indices=(3, 7, 11))
"""

from pe_dense.backbone.factory import create_backbone
from pe_dense.backbone.pe_vit import PEViT
from pe_dense.backbone.variants import VARIANTS, PEConfig, get_variant, list_models
from pe_dense.backbone.weights import LoadReport, WeightLoadError, convert_state_dict, load_weights

__all__ = [
    "PEViT", "PEConfig", "VARIANTS", "LoadReport", "WeightLoadError", "create_backbone",
    "convert_state_dict", "get_variant", "list_models", "load_weights",
]
__version__ = "0.1.0"
