"""detectron2 integration: PE as a ViTDet backbone in detectron2's LazyConfig system.

The only module that imports detectron2 (extra ``d2``; detectron2 itself is built from source,
see the README). Importing this module never imports detectron2: the backbone class
:data:`PEViTBackbone` is created on first access, and fails there with install advice. Only
detectron2 glue lives here; checkpoint layouts and loading are
:mod:`pe_dense.backbone.layouts` / :mod:`pe_dense.backbone.weights`, the ViTDet presets
:data:`pe_dense.backbone.variants.VITDET_PRESETS`, the lr-decay rule
:func:`pe_dense.backbone.pe_vit.layer_id`.

- ``PEViTBackbone`` is our :class:`~pe_dense.backbone.pe_vit.PEViT` (same parameters, same
  numerics) that is also a ``detectron2.modeling.Backbone``: it returns
  ``{"last_feat": (B, C, H/p, W/p)}`` for ``SimpleFeaturePyramid`` and reports
  ``output_shape()``. Its parameter names are the official ones, so official PE detection
  checkpoints (``backbone.net.conv1.weight``, ``backbone.net.transformer.resblocks.*``, a 3-D
  ``positional_embedding`` and RoPE buffers) load through detectron2's own checkpointer too.
- ``PEDetectionCheckpointer`` reads every PE weight format into a detector.
- :func:`vitdet_net` / :func:`vitdet_lr_factor`: a variant's ViTDet preset as ``PEViTBackbone``
  arguments and as ``optimizer.params.lr_factor_func`` (:func:`lr_decay_rate`).
- :func:`register_coco_dataset` registers a COCO-format folder as detectron2 datasets.

Initialise a detector from any PE checkpoint with
:func:`pe_dense.backbone.weights.load_detector_checkpoint`.
"""

from __future__ import annotations

import functools
import logging
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from pe_dense.backbone.factory import backbone_kwargs
from pe_dense.backbone.layouts import (
    adapt_detection_state_dict,
    keep_unused_cls,
    to_detector_layout,
)
from pe_dense.backbone.pe_vit import PEViT, layer_id
from pe_dense.backbone.variants import VITDET_COMMON, get_variant, vitdet_backbone, vitdet_preset
from pe_dense.backbone.weights import load_weights

__all__ = [  # noqa: F822  (the two classes are built on first access, see __getattr__)
    "INSTALL_HINT", "PEViTBackbone", "PEDetectionCheckpointer", "require_detectron2",
    "lr_decay_rate", "vitdet_net", "vitdet_lr_factor", "register_coco_dataset",
    "register_coco_root",
]

log = logging.getLogger(__name__)

INSTALL_HINT = (
    "the detectron2 integration needs detectron2, which is not on PyPI: "
    "pip install 'pe-dense[d2]' and then build detectron2 from source with "
    "pip install --no-build-isolation --no-deps 'git+https://github.com/facebookresearch/detectron2.git'"
)


def require_detectron2() -> Any:
    """Import and return the ``detectron2`` package, or raise ImportError with install advice."""
    try:
        import detectron2
        import detectron2.modeling  # noqa: F401  (the compiled ops load here)
    except ImportError as exc:
        raise ImportError(f"{INSTALL_HINT} ({type(exc).__name__}: {exc})") from exc
    return detectron2


# ----------------------------------------------------------------------------- the backbone

def _backbone_options(variant: str, overrides: dict[str, Any]) -> dict[str, Any]:
    """The PEViT keyword arguments of ``variant`` with ``overrides`` applied (names checked)."""
    return backbone_kwargs(variant, overrides,
                           also_accepted=("out_feature", "square_pad", "weights", "strict"),
                           what="PEViTBackbone")


def _init_backbone(self: PEViT, variant: str = "PE-Spatial-B16-512", *,
                   out_feature: str = "last_feat", square_pad: int = 0, weights: Any = None,
                   strict: bool = True, **overrides: Any) -> None:
    """Build ``variant`` with PEViT ``overrides`` (a variant's ViTDet preset: :func:`vitdet_net`).

    ``square_pad``: the padded input size the detector uses (0: none), reported in
    ``padding_constraints``. ``weights``: optional backbone checkpoint in any pe_dense format
    (loaded with the detection rules of :func:`~pe_dense.backbone.weights.load_weights`).
    """
    PEViT.__init__(self, **_backbone_options(variant, overrides))
    self.variant = variant
    self._out_features = [out_feature]
    self._out_feature_channels = {out_feature: self.embed_dim}
    self._out_feature_strides = {out_feature: self.patch_size}
    self._square_pad = int(square_pad)
    if weights is not None:
        load_weights(self, weights, strict=strict, detection=True)


def _backbone_forward(self: PEViT, x: torch.Tensor) -> dict[str, torch.Tensor]:
    """x: (B, 3, H, W) normalised to [-1, 1] by the detector's pixel_mean/std. H and W are
    zero-padded up to a multiple of the patch size. Returns {out_feature: (B, C, H/p, W/p)}."""
    p = self.patch_size
    pad_h, pad_w = -x.shape[-2] % p, -x.shape[-1] % p
    if pad_h or pad_w:
        x = F.pad(x, (0, pad_w, 0, pad_h))
    return {self._out_features[0]: self.forward_intermediates(x, indices=[-1])[0]}


def _padding_constraints(self: PEViT) -> dict[str, int]:
    return {"size_divisibility": self.patch_size, "square_size": self._square_pad}


def _load_from_state_dict(self: PEViT, state_dict: dict, prefix: str, *args: Any) -> None:
    adapt_detection_state_dict(state_dict, prefix, self.patch_size)
    keep_unused_cls(state_dict, prefix, self)
    PEViT._load_from_state_dict(self, state_dict, prefix, *args)


def _subclass(name: str, bases: tuple[type, ...], doc: str, **methods: Any) -> type:
    """A class ``name`` of this module, built when first asked for (detectron2 is imported
    only then)."""
    return type(name, bases, {"__module__": __name__, "__qualname__": name, "__doc__": doc,
                              **methods})


@functools.cache
def _backbone_class() -> type:
    require_detectron2()
    from detectron2.modeling import Backbone

    doc = ("PEViT as a detectron2 Backbone (see the module docstring).\n\n"
           + (_init_backbone.__doc__ or ""))
    return _subclass("PEViTBackbone", (PEViT, Backbone), doc, __init__=_init_backbone,
                     forward=_backbone_forward,
                     size_divisibility=property(lambda self: self.patch_size),
                     padding_constraints=property(_padding_constraints),
                     _load_from_state_dict=_load_from_state_dict)


def _checkpointer_load_file(self: Any, filename: str) -> dict:
    from detectron2.checkpoint import DetectionCheckpointer

    loaded = DetectionCheckpointer._load_file(self, filename)
    if isinstance(loaded.get("model"), dict):
        loaded["model"] = to_detector_layout(loaded["model"], self.model)
    return loaded


@functools.cache
def _checkpointer_class() -> type:
    require_detectron2()
    from detectron2.checkpoint import DetectionCheckpointer

    doc = ("detectron2's DetectionCheckpointer that also reads every PE weight format: "
           "official detection files (3-D position embedding, RoPE buffers, 14x14 kernels) and "
           "backbone-only files (official, timm/HF, d2-converted), which it places under the "
           "detector's backbone prefix. Loading stays non-strict, as in detectron2; use "
           "pe_dense.backbone.weights.load_detector_checkpoint for a strict backbone load.")
    return _subclass("PEDetectionCheckpointer", (DetectionCheckpointer,), doc,
                     _load_file=_checkpointer_load_file)


def __getattr__(name: str) -> Any:
    # PEP 562: ``from pe_dense.integrations.detectron2 import PEViTBackbone`` builds the class
    # (and imports detectron2) only when it is asked for.
    if name == "PEViTBackbone":
        return _backbone_class()
    if name == "PEDetectionCheckpointer":
        return _checkpointer_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# ----------------------------------------------------------------------------- configs

def lr_decay_rate(name: str, lr_decay_rate: float = 1.0, num_layers: int = 12) -> float:
    """Layer-wise lr multiplier for parameter ``name`` of a detector with a PEViT backbone.

    The backbone's parameters (``backbone.net.*``) get :func:`~pe_dense.backbone.pe_vit.layer_id`
    (embedding 0, block ``i`` ``i + 1``); everything outside the backbone net (pyramid, heads)
    is layer ``num_layers + 1`` (multiplier 1). Returns
    ``lr_decay_rate ** (num_layers + 1 - layer)``. Use with ``functools.partial`` as
    ``optimizer.params.lr_factor_func`` (see :func:`vitdet_lr_factor`).
    """
    layer = num_layers + 1
    if name.startswith("backbone") and ".net." in name:
        layer = layer_id(name.split(".net.", 1)[1], num_layers)
    return lr_decay_rate ** (num_layers + 1 - layer)


def vitdet_lr_factor(variant: str) -> functools.partial:
    """``optimizer.params.lr_factor_func`` for the ViTDet preset of ``variant``: its depth and
    layer decay (:data:`~pe_dense.backbone.variants.VITDET_PRESETS`)."""
    return functools.partial(lr_decay_rate, num_layers=get_variant(variant).layers,
                             lr_decay_rate=vitdet_preset(variant).layer_decay)


def vitdet_net(variant: str, **overrides: Any) -> dict[str, Any]:
    """``PEViTBackbone`` keyword arguments of the ViTDet preset of ``variant`` (1024 px, square
    padded), with ``overrides``: ``L(PEViTBackbone)(**vitdet_net("PE-Spatial-B16-512"))``."""
    options = vitdet_backbone(variant)
    del options["name"]
    options.setdefault("grad_checkpointing", False)
    return {"variant": variant, **options, "out_feature": "last_feat",
            "square_pad": VITDET_COMMON["image_size"], **overrides}


# ----------------------------------------------------------------------------- datasets

def register_coco_dataset(name: str, json_file: str | Path, image_root: str | Path) -> None:
    """Register a COCO-format dataset under ``name`` in detectron2's DatasetCatalog (for
    ``get_detection_dataset_dicts(names=name)`` and ``COCOEvaluator(dataset_name=name)``)."""
    require_detectron2()
    from detectron2.data import DatasetCatalog
    from detectron2.data.datasets import register_coco_instances

    json_file, image_root = Path(json_file), Path(image_root)
    if not json_file.is_file():
        raise FileNotFoundError(f"COCO annotation file {json_file} does not exist")
    if not image_root.is_dir():
        raise FileNotFoundError(f"COCO image folder {image_root} does not exist")
    if name in DatasetCatalog.list():
        log.info("dataset %s is already registered; keeping the existing entry", name)
        return
    register_coco_instances(name, {}, str(json_file), str(image_root))


def register_coco_root(prefix: str, root: str | Path) -> list[str]:
    """Register every split of a COCO-layout folder as ``{prefix}_{split}``.

    ``root/annotations/instances_<split>2017.json`` (or ``instances_<split>.json``) with images in
    ``root/images/<split>2017`` or ``root/<split>2017``. Returns the registered names.
    """
    root = Path(root)
    names = []
    for ann in sorted((root / "annotations").glob("instances_*.json")):
        split = ann.stem[len("instances_"):]
        images = next((d for d in (root / "images" / split, root / split) if d.is_dir()), None)
        if images is None:
            raise FileNotFoundError(f"no image folder for {ann.name}: expected "
                                    f"{root / 'images' / split} or {root / split}")
        short = split[:-4] if split.endswith("2017") else split
        register_coco_dataset(f"{prefix}_{short}", ann, images)
        names.append(f"{prefix}_{short}")
    if not names:
        raise FileNotFoundError(f"no annotations/instances_*.json under {root}")
    return names
