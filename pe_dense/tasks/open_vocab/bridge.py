"""A learned bridge from PE-Core's text space into any PE tower's patch space (Talk2DINO /
dino.txt style): text prompts segment with PE-Spatial, which has no text tower of its own.

:class:`BridgeSegmenter`: a frozen PE tower read at ``layers`` -> a small patch adapter (1x1 or
3x3 convolutions, or residual conv blocks) -> dense embeddings (B, D, h, w); the frozen text
tower's prompt embeddings (computed once, cached) -> :class:`TextBridge` (an MLP) -> class
vectors in the same space; a learned background vector first; logits = learned scale * cosine.
Trained with pixel cross-entropy on masks (or boxes) whose classes are named (``background`` +
the prompts).

A trained bridge is saved as one file (:func:`save_bridge`: its spec and its weights, plus the
backbone's when the backbone had no weights file, e.g. a random test tower) and loaded with
:func:`load_bridge` for ``pe-dense segment-text --bridge``.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from pe_dense.backbone.checkpoints import load_object
from pe_dense.backbone.clip import create_text_tower
from pe_dense.backbone.contract import Backbone, one_indices
from pe_dense.backbone.weights import load_state_dict_checked
from pe_dense.tasks.common import BackboneFeatures
from pe_dense.tasks.open_vocab.model import TextSegmenter
from pe_dense.tasks.open_vocab.prompts import check_prompts, get_templates
from pe_dense.tasks.open_vocab.text_cache import TextEmbeddingCache
from pe_dense.tasks.segmentation.losses import seg_loss_and_accuracy
from pe_dense.utils.io import atomic_path

__all__ = ["TextBridge", "BridgeSegmenter", "save_bridge", "load_bridge", "BRIDGE_FORMAT"]

BRIDGE_FORMAT = "pe_dense.bridge/1"
_ADAPTERS = ("none", "linear", "mlp", "conv", "blocks")


class TextBridge(nn.Module):
    """Text embedding (N, text_dim) -> patch-space vector (N, dim): Linear-GELU-Linear."""

    def __init__(self, text_dim: int, dim: int, hidden: int = 256) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(text_dim, hidden), nn.GELU(), nn.Linear(hidden, dim))

    def forward(self, text: torch.Tensor) -> torch.Tensor:
        return self.net(text)


class ConvBlock(nn.Module):
    """A residual 3x3 block on the patch grid: x + conv3x3(GELU(conv3x3(GroupNorm(x)))),
    (B, C, h, w) -> (B, C, h, w); the trainable vision blocks of a "blocks" adapter."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.norm = nn.GroupNorm(1, dim)
        self.conv1 = nn.Conv2d(dim, dim, 3, padding=1)
        self.conv2 = nn.Conv2d(dim, dim, 3, padding=1)
        nn.init.zeros_(self.conv2.weight)
        nn.init.zeros_(self.conv2.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(nn.functional.gelu(self.conv1(self.norm(x))))


def _adapter(kind: str, in_dim: int, dim: int, hidden: int, depth: int = 2) -> nn.Module:
    if kind not in _ADAPTERS:
        raise ValueError(f"patch_adapter={kind!r}: use one of {_ADAPTERS}")
    if kind == "none":
        if in_dim != dim:
            raise ValueError(f"patch_adapter='none' needs embed_dim == {in_dim} (the backbone "
                             "width times the number of layers)")
        return nn.Identity()
    if kind == "linear":
        return nn.Conv2d(in_dim, dim, 1)
    if kind == "conv":  # 3x3 context before the 1x1 projection
        return nn.Sequential(nn.Conv2d(in_dim, hidden, 3, padding=1), nn.GELU(),
                             nn.Conv2d(hidden, dim, 1))
    if kind == "blocks":  # 1x1 in, `depth` residual 3x3 blocks (wider context), 1x1 out
        return nn.Sequential(nn.Conv2d(in_dim, hidden, 1), *(ConvBlock(hidden) for _ in
                             range(depth)), nn.GroupNorm(1, hidden), nn.Conv2d(hidden, dim, 1))
    return nn.Sequential(nn.Conv2d(in_dim, hidden, 1), nn.GELU(), nn.Conv2d(hidden, dim, 1))


class BridgeSegmenter(TextSegmenter):
    """``backbone``: a Backbone or ``create_backbone`` kwargs (frozen); ``prompts``: class names
    (without background); ``text``: the text tower, ``dict(name="PE-Core-B16-224",
    weights=<full CLIP .pt> | None, seed=0, templates="none", cache=<file> | None)``;
    ``layers``: blocks read (concatenated); ``patch_adapter``: "none" | "linear" | "mlp" (1x1
    convolutions) | "conv" (a 3x3 first) | "blocks" (``adapter_depth`` residual 3x3 blocks,
    :class:`ConvBlock`, ``hidden`` wide: trainable vision blocks, dino.txt style);
    ``embed_dim``: the shared space (default the backbone width); ``background``: learn a
    background class (output 0); ``freeze_backbone``: True for pretrained towers (the bridge's
    purpose); False trains the tower too (the from-scratch test tower of the synthetic learning
    check)."""

    has_background = True

    def __init__(self, *, backbone: Backbone | Mapping[str, Any], prompts: Sequence[str],
                 text: Mapping[str, Any], indices: Sequence[int] | None = None,
                 layers: Sequence[int] | None = None,
                 patch_adapter: str = "mlp", adapter_depth: int = 2,
                 embed_dim: int | None = None, hidden: int = 256,
                 background: bool = True, ignore_index: int = 255,
                 init_logit_scale: float = 10.0, freeze_backbone: bool = True) -> None:
        super().__init__()
        indices = one_indices(indices, (-1,), "BridgeSegmenter", layers=layers)
        self.spec = {"backbone": dict(backbone) if isinstance(backbone, Mapping) else None,
                     "prompts": list(prompts), "text": dict(text), "indices": list(indices),
                     "patch_adapter": patch_adapter, "adapter_depth": adapter_depth,
                     "embed_dim": embed_dim, "hidden": hidden,
                     "background": background, "ignore_index": ignore_index,
                     "freeze_backbone": freeze_backbone}
        self.features = BackboneFeatures(backbone, indices, freeze=freeze_backbone)
        vit = self.features.backbone
        in_dim = vit.embed_dim * len(self.features.indices)
        dim = embed_dim or vit.embed_dim
        self.size_divisor, self.ignore_index = vit.patch_size, ignore_index
        self.has_background = background
        self.adapter = _adapter(patch_adapter, in_dim, dim, hidden, adapter_depth)
        self.text_spec = dict(text)
        self.register_buffer("class_embeddings", torch.zeros(0), persistent=False)
        self.set_prompts(prompts)
        self.bridge = TextBridge(self.class_embeddings.shape[1], dim, hidden)
        self.background = nn.Parameter(0.02 * torch.randn(dim)) if background else None
        self.log_scale = nn.Parameter(torch.tensor(math.log(init_logit_scale)))

    def set_prompts(self, prompts: Sequence[str]) -> None:
        """Encode ``prompts`` with the (frozen) text tower of ``text`` as the output classes;
        the tower is built for this and dropped afterwards (the embeddings are cached)."""
        spec = self.text_spec
        self.prompts = tuple(check_prompts(prompts))
        tower, tokenizer = create_text_tower(spec["name"], spec.get("weights"), spec.get("seed", 0))
        templates = get_templates(spec.get("templates", "none"))
        emb = TextEmbeddingCache(spec.get("cache")).get(tower, tokenizer, self.prompts, templates)
        self.class_embeddings = emb.to(self.log_scale.device if hasattr(self, "log_scale")
                                       else "cpu")

    @property
    def backbone(self) -> Backbone:
        """The frozen backbone (its ``normalize`` prepares the inputs)."""
        return self.features.backbone

    def class_vectors(self) -> torch.Tensor:
        vectors = self.bridge(self.class_embeddings.to(self.log_scale.device))
        if self.background is not None:
            vectors = torch.cat([self.background[None], vectors])
        return vectors

    def logit_scale(self) -> torch.Tensor:
        return self.log_scale.exp().clamp(max=100.0)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, 3, H, W) in [-1, 1] -> (B, D, H/p, W/p) adapted patch embeddings."""
        return self.adapter(torch.cat(self.features(x), dim=1))

    def loss(self, images: torch.Tensor, samples: Sequence[dict]) -> dict[str, torch.Tensor]:
        """images: (B, 3, H, W) uint8; samples with ``"label"`` (H, W): 0 = background,
        i = prompt i - 1, ``ignore_index`` ignored -> ``{"loss_ce", "acc_seg"}``."""
        logits, labels = self.training_outputs(images, samples, "label",
                                               "pe_dense.data.segmentation.seg_collate")
        return seg_loss_and_accuracy(logits, labels, self.ignore_index)


def _embeds_backbone(spec: Mapping[str, Any]) -> bool:
    """The backbone's weights go into the bridge file: no weights file, or trained here."""
    return not (spec.get("backbone") or {}).get("weights") or not spec.get("freeze_backbone")


def save_bridge(model: BridgeSegmenter, path: str | os.PathLike) -> None:
    """Write the bridge file: spec + trained weights (+ the backbone's when it has no weights
    file, so a random-backbone bridge reproduces exactly)."""
    if model.spec["backbone"] is None:
        raise ValueError("save_bridge needs a model built from backbone kwargs (a dict)")
    keep_backbone = _embeds_backbone(model.spec)
    sd = {k: v.detach().cpu() for k, v in model.state_dict().items()
          if keep_backbone or not k.startswith("features.backbone.")}
    with atomic_path(path) as tmp:
        torch.save({"format": BRIDGE_FORMAT, "spec": model.spec, "state_dict": sd}, tmp)


def load_bridge(path: str | os.PathLike, backbone_weights: Any = None,
                prompts: Sequence[str] | None = None, **text_overrides: Any) -> BridgeSegmenter:
    """A :class:`BridgeSegmenter` from a :func:`save_bridge` file. ``backbone_weights``
    replaces the recorded backbone weights (e.g. a local copy of the PE-Spatial file);
    ``prompts`` replaces the training prompts; ``text_overrides`` the text spec (``weights``,
    ``cache`` ...)."""
    obj = load_object(path, command="bridge")
    if not isinstance(obj, dict) or obj.get("format") != BRIDGE_FORMAT:
        raise ValueError(f"{path} is not a pe_dense bridge file (written by the SaveBridgeHook "
                         "of a configs/open_vocab/ training run, work_dir/bridge.pth)")
    spec = dict(obj["spec"])
    embedded = _embeds_backbone(spec)
    if backbone_weights is not None:
        spec["backbone"] = {**spec["backbone"], "weights": backbone_weights}
    spec["text"] = {**spec["text"], **text_overrides}
    model = BridgeSegmenter(**{**spec, "backbone": {**spec["backbone"], "weights": None}
                               if embedded else spec["backbone"]})
    exclude = () if embedded else ("features.backbone.",)
    load_state_dict_checked(model, obj["state_dict"], source_format="pe_dense bridge",
                            headline=f"{path} does not fit its own spec", exclude=exclude)
    if prompts is not None:
        model.set_prompts(prompts)
    return model
