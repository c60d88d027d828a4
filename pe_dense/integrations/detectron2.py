"""detectron2 integration: PE as a ViTDet backbone in detectron2's LazyConfig system.

The only module that imports detectron2 (extra ``d2``; detectron2 itself is built from source,
see the README). Importing this module never imports detectron2: the backbone class
:data:`PEViTBackbone` is created on first access, and fails there with install advice.

- ``PEViTBackbone`` is our :class:`~pe_dense.backbone.pe_vit.PEViT` (same parameters, same
  numerics) that is also a ``detectron2.modeling.Backbone``: it returns
  ``{"last_feat": (B, C, H/p, W/p)}`` for ``SimpleFeaturePyramid`` and reports
  ``output_shape()``. Its parameter names are the official ones, so official PE detection
  checkpoints (``backbone.net.conv1.weight``, ``backbone.net.transformer.resblocks.*``, a 3-D
  ``positional_embedding`` and RoPE buffers) load through detectron2's own checkpointer too.
- :func:`lr_decay_rate` is the layer-wise learning-rate rule for ``get_default_optimizer_params``.
- :func:`load_init_checkpoint` loads any weight format pe_dense reads (official, timm / HF,
  detectron2-converted, full detector checkpoints) into a detector, strictly for the backbone.
- :func:`register_coco_dataset` registers a COCO-format folder as detectron2 datasets.
"""

from __future__ import annotations

import functools
import logging
import re
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from pe_dense.backbone.factory import backbone_kwargs
from pe_dense.backbone.pe_vit import PEViT
from pe_dense.backbone.weights import (
    LoadReport,
    WeightLoadError,
    load_weights,
    read_checkpoint,
    to_official,
)

__all__ = [  # noqa: F822  (the two classes are built on first access, see __getattr__)
    "INSTALL_HINT", "PEViTBackbone", "PEDetectionCheckpointer", "require_detectron2",
    "lr_decay_rate", "adapt_detection_state_dict", "load_init_backbone", "load_init_checkpoint",
    "register_coco_dataset", "register_coco_root", "find_backbone", "to_detector_layout",
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
    """Build ``variant`` with PEViT ``overrides`` (e.g. ``image_size=1024, patch_size=16,
    pretrain_image_size=512, window_size=32, global_blocks=(2, 5, 8, 11), posemb_mode="tile",
    rope_mode="interpolate", drop_path=0.1, grad_checkpointing=True``).

    ``square_pad``: the padded input size the detector uses (0: none), reported in
    ``padding_constraints``. ``weights``: optional backbone checkpoint in any pe_dense format.
    """
    PEViT.__init__(self, **_backbone_options(variant, overrides))
    self.variant = variant
    self._out_features = [out_feature]
    self._out_feature_channels = {out_feature: self.embed_dim}
    self._out_feature_strides = {out_feature: self.patch_size}
    self._square_pad = int(square_pad)
    if self.use_cls_token and not self.num_prefix_tokens:
        # Windowed mode drops the cls token; freeze it so DDP sees no unused trainable parameter.
        self.class_embedding.requires_grad_(False)
    if weights is not None:
        load_init_backbone(self, weights, strict=strict)


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
    _keep_unused_cls(state_dict, prefix, self)
    PEViT._load_from_state_dict(self, state_dict, prefix, *args)


@functools.cache
def _backbone_class() -> type:
    require_detectron2()
    from detectron2.modeling import Backbone

    namespace = {
        "__module__": __name__,
        "__qualname__": "PEViTBackbone",
        "__doc__": "PEViT as a detectron2 Backbone (see the module docstring).\n\n"
                   + (_init_backbone.__doc__ or ""),
        "__init__": _init_backbone,
        "forward": _backbone_forward,
        "size_divisibility": property(lambda self: self.patch_size),
        "padding_constraints": property(_padding_constraints),
        "_load_from_state_dict": _load_from_state_dict,
    }
    return type("PEViTBackbone", (PEViT, Backbone), namespace)


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

    namespace = {
        "__module__": __name__,
        "__qualname__": "PEDetectionCheckpointer",
        "__doc__": "detectron2's DetectionCheckpointer that also reads every PE weight format: "
                   "official detection files (3-D position embedding, RoPE buffers, 14x14 "
                   "kernels) and backbone-only files (official, timm/HF, d2-converted), which "
                   "it places under the detector's backbone prefix. Loading stays non-strict, "
                   "as in detectron2; use load_init_checkpoint for a strict backbone load.",
        "_load_file": _checkpointer_load_file,
    }
    return type("PEDetectionCheckpointer", (DetectionCheckpointer,), namespace)


def __getattr__(name: str) -> Any:
    # PEP 562: ``from pe_dense.integrations.detectron2 import PEViTBackbone`` builds the class
    # (and imports detectron2) only when it is asked for.
    if name == "PEViTBackbone":
        return _backbone_class()
    if name == "PEDetectionCheckpointer":
        return _checkpointer_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# ----------------------------------------------------------------------------- checkpoints

def adapt_detection_state_dict(sd: dict[str, torch.Tensor], prefix: str,
                               patch_size: int) -> None:
    """In place: make official detection-layout backbone keys under ``prefix`` fit PEViT.

    Drops the recomputable RoPE buffers (``rope_win.freqs_cos``, ``...attn.rope.freqs_sin``),
    squeezes a (1, N, C) ``positional_embedding`` to (N, C) and resamples a ``conv1`` kernel of
    another size (14 -> 16) bicubically, as the official converter does.
    """
    for key in [k for k in sd if k.startswith(prefix)]:
        if re.search(r"(^|\.)rope\w*\.freqs_", key[len(prefix):]):
            del sd[key]
    pos = sd.get(prefix + "positional_embedding")
    if pos is not None and pos.ndim == 3:
        sd[prefix + "positional_embedding"] = pos[0]
    conv = sd.get(prefix + "conv1.weight")
    if conv is not None and conv.ndim == 4 and conv.shape[-1] != patch_size:
        log.warning("resampling the %dx%d patch kernel to %dx%d (bicubic, as the official "
                    "detection converter does)", conv.shape[-2], conv.shape[-1], patch_size,
                    patch_size)
        sd[prefix + "conv1.weight"] = F.interpolate(
            conv.float(), size=(patch_size, patch_size), mode="bicubic", align_corners=False
        ).to(conv.dtype)


def _keep_unused_cls(sd: dict[str, Any], prefix: str, net: PEViT) -> None:
    """Detectors trained by the official code have no ``class_embedding`` (windowed blocks drop
    the cls token); ours has one, unused in windowed mode: keep its value instead of failing."""
    key = prefix + "class_embedding"
    if (net.use_cls_token and not net.num_prefix_tokens and key not in sd
            and prefix + "conv1.weight" in sd):
        sd[key] = net.class_embedding.detach().clone()


def find_backbone(model: nn.Module) -> tuple[str, PEViT]:
    """The PEViT inside ``model`` (unwrapping DDP): its module name and the module itself."""
    model = getattr(model, "module", model)
    for name, module in model.named_modules():
        if isinstance(module, PEViT):
            return name, module
    raise ValueError(f"{type(model).__name__} contains no PEViT backbone")


def _tensors(obj: Any) -> dict[str, torch.Tensor]:
    """The flat tensor dict of a checkpoint object (``model``/``state_dict`` wrappers, DDP)."""
    while isinstance(obj, dict) and not any(isinstance(v, torch.Tensor) for v in obj.values()):
        inner = next((k for k in ("model", "state_dict", "module") if isinstance(obj.get(k), dict)),
                     None)
        if inner is None:
            break
        obj = obj[inner]
    if not isinstance(obj, dict):
        raise WeightLoadError(f"expected a checkpoint dict, got {type(obj).__name__}")
    return {(k[7:] if k.startswith("module.") else k): v for k, v in obj.items()
            if isinstance(v, torch.Tensor)}


def to_detector_layout(sd: dict[str, Any], model: nn.Module) -> dict[str, Any]:
    """Any PE checkpoint's tensors -> the key layout of ``model`` (a detector with a PEViT).

    Detector checkpoints keep their keys (the backbone part adapted in place by
    :func:`adapt_detection_state_dict`); backbone-only checkpoints (official, timm/HF,
    d2-converted) are converted to official names and put under the backbone's prefix.
    """
    prefix, net = find_backbone(model)
    prefix = f"{prefix}." if prefix else ""
    tensors = _tensors(sd)
    if prefix and not any(k.startswith(prefix) for k in tensors):
        official, _ = to_official(tensors)
        tensors = {prefix + k: v for k, v in official.items()}
    adapt_detection_state_dict(tensors, prefix, net.patch_size)
    _keep_unused_cls(tensors, prefix, net)
    return tensors


def load_init_backbone(net: PEViT, source: Any, strict: bool = True) -> LoadReport:
    """Load a backbone checkpoint (official, timm/HF, detectron2-converted) into ``net``,
    resampling a patch kernel of another size to ``net.patch_size``."""
    sd, fmt = to_official(read_checkpoint(source))
    adapt_detection_state_dict(sd, "", net.patch_size)
    _keep_unused_cls(sd, "", net)
    report = load_weights(net, sd, strict=strict)
    report.source_format = fmt
    return report


def load_init_checkpoint(model: nn.Module, source: Any, strict_backbone: bool = True) -> dict:
    """Initialise a detector from ``source`` (path, ``hf://`` spec or dict).

    - Backbone-only checkpoints (official ``.pt``, timm/HF, ``pe-dense convert --to detectron2``
      output) load strictly into the PEViT; the other detector weights keep their init.
    - Detector checkpoints (keys ``backbone.net.*`` plus pyramid/heads, e.g. the official PE
      detection checkpoints or our own ``model_final.pth``) load the backbone strictly and the
      rest by name; tensors whose shapes differ (another number of classes) are skipped with a
      warning.

    Returns ``{"backbone": LoadReport, "skipped": [...], "missing": [...]}``.
    """
    prefix, net = find_backbone(model)
    prefix = f"{prefix}." if prefix else ""
    sd = _tensors(read_checkpoint(source))
    is_detector = any(k.startswith(prefix) for k in sd) and prefix != ""
    if not is_detector:
        return {"backbone": load_init_backbone(net, sd, strict=strict_backbone),
                "skipped": [], "missing": []}
    adapt_detection_state_dict(sd, prefix, net.patch_size)
    _keep_unused_cls(sd, prefix, net)
    net_sd = {k[len(prefix):]: v for k, v in sd.items() if k.startswith(prefix)}
    report = load_weights(net, net_sd, strict=strict_backbone)
    report.source_format = "detectron2"
    own = getattr(model, "module", model).state_dict()
    rest = {k: v for k, v in sd.items() if not k.startswith(prefix)}
    skipped = [k for k, v in rest.items() if k in own and own[k].shape != v.shape]
    for key in skipped:
        log.warning("skipping %s: checkpoint %s vs model %s", key, tuple(rest[key].shape),
                    tuple(own[key].shape))
    unexpected = [k for k in rest if k not in own]
    if unexpected:
        log.warning("ignoring %d checkpoint tensors the model lacks, e.g. %s", len(unexpected),
                    unexpected[:5])
    loadable = {k: v for k, v in rest.items() if k in own and k not in skipped}
    missing = [k for k in own if not k.startswith(prefix) and k not in loadable]
    if missing:
        log.info("%d detector tensors not in the checkpoint keep their initialisation, e.g. %s",
                 len(missing), missing[:5])
    getattr(model, "module", model).load_state_dict(loadable, strict=False)
    return {"backbone": report, "skipped": skipped + unexpected, "missing": missing}


# ----------------------------------------------------------------------------- training helpers

def lr_decay_rate(name: str, lr_decay_rate: float = 1.0, num_layers: int = 12) -> float:
    """Layer-wise lr multiplier for parameter ``name`` of a detector with a PEViT backbone.

    Embedding parameters (``conv1``, ``positional_embedding``, ``class_embedding``, ``ln_pre``)
    are layer 0, ``transformer.resblocks.i`` is layer i + 1, and everything outside the
    backbone net (pyramid, heads) is layer ``num_layers + 1`` (multiplier 1). Returns
    ``lr_decay_rate ** (num_layers + 1 - layer)``. Use with ``functools.partial`` as
    ``optimizer.params.lr_factor_func``.
    """
    layer = num_layers + 1
    if name.startswith("backbone") and ".net." in name:
        block = re.search(r"\.resblocks\.(\d+)\.", name)
        if block:
            layer = int(block.group(1)) + 1
        elif re.search(r"\.(conv1|positional_embedding|class_embedding|ln_pre)(\.|$)", name):
            layer = 0
    return lr_decay_rate ** (num_layers + 1 - layer)


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
