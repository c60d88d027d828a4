"""PE-Core as a CLIP model: the vision tower (our one :class:`PEViT`) + the text tower.

``create_clip("PE-Core-B16-224", weights="PE-Core-B16-224.pt")`` builds the model and loads a
full official CLIP checkpoint strictly: the vision keys under ``visual.``, the text tower's keys
at the top level (``token_embedding.weight``, ``positional_embedding``,
``transformer.resblocks.*``, ``ln_final.*``, ``text_projection``) and ``logit_scale``, the same
layout as the official ``CLIP`` (which subclasses its ``TextTransformer``; so does ours).

    clip = create_clip("PE-Core-T16-384", weights=...)
    ids = clip.tokenize(["a dog", "a cat"])                   # (2, 32) int64
    text = clip.encode_text(ids, normalize=True)              # (2, 512)
    image = clip.encode_image(normalize(images), normalize=True)  # (B, 512)
    probs = (clip.logit_scale.exp() * image @ text.T).softmax(-1)
"""

from __future__ import annotations

import math
import os
from dataclasses import asdict
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from pe_dense.backbone.factory import backbone_kwargs
from pe_dense.backbone.layouts import unwrap_state_dict
from pe_dense.backbone.pe_vit import PEViT
from pe_dense.backbone.text import TEXT_VARIANTS, TextTransformer, text_variant
from pe_dense.backbone.tokenizer import ClipTokenizer
from pe_dense.backbone.weights import (
    LoadReport,
    WeightLoadError,
    load_state_dict_checked,
    read_checkpoint,
)
from pe_dense.utils.seeding import seeded

__all__ = ["CLIP", "create_clip", "create_text_tower", "load_clip_weights", "clip_models",
           "CLIP_VISION_OVERRIDES"]

# PE-Test's vision tower is Spatial-like; as a CLIP test model it gets Core's pooling head.
CLIP_VISION_OVERRIDES: dict[str, dict[str, Any]] = {
    "PE-Test": dict(pool_type="attn", output_dim=32, use_ln_post=True),
}


def clip_models() -> list[str]:
    """The variants with a text tower (PE-Core, and the tiny PE-Test and PE-Mini)."""
    return list(TEXT_VARIANTS)


class CLIP(TextTransformer):
    """Vision tower ``visual`` (a :class:`PEViT` with attention pooling and projection) and the
    text tower (this module's own parameters), plus ``logit_scale`` (log of the inverse
    temperature, ``log(1 / 0.07)`` at init)."""

    def __init__(self, *, visual: PEViT, context_length: int, width: int, heads: int,
                 layers: int, output_dim: int, mlp_ratio: float = 4.0,
                 vocab_size: int = 49408, name: str = "") -> None:
        super().__init__(context_length=context_length, width=width, heads=heads,
                         layers=layers, output_dim=output_dim, mlp_ratio=mlp_ratio,
                         vocab_size=vocab_size)
        if getattr(visual, "pool_type", "none") == "none" or not hasattr(visual, "proj"):
            raise ValueError("the CLIP vision tower needs pooling and a projection (a PE-Core "
                             "variant); PE-Spatial and PE-Lang towers have neither")
        if visual.proj.shape[1] != output_dim:
            raise ValueError(f"vision embedding {visual.proj.shape[1]} != text embedding "
                             f"{output_dim}")
        self.name = name
        self.visual = visual
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1 / 0.07)))
        self._tokenizer: ClipTokenizer | None = None

    @property
    def embed_dim(self) -> int:
        """Size of the shared image-text embedding."""
        return self.text_projection.shape[1]

    def tokenize(self, texts: str | list[str]) -> torch.Tensor:
        """Prompts -> (N, context_length) int64 ids on the model's device (CLIP BPE)."""
        if self._tokenizer is None:
            self._tokenizer = ClipTokenizer(self.context_length)
        return self._tokenizer(texts).to(self.logit_scale.device)

    def encode_image(self, x: torch.Tensor, normalize: bool = False) -> torch.Tensor:
        """x: (B, 3, H, W) float in [-1, 1] -> (B, embed_dim) (L2-normalised if asked)."""
        out = self.visual(x)
        return F.normalize(out, dim=-1) if normalize else out

    def encode_text(self, ids: torch.Tensor, normalize: bool = False) -> torch.Tensor:
        """ids: (N, T) int64 from :meth:`tokenize` -> (N, embed_dim)."""
        out = self.encode_ids(ids)
        return F.normalize(out, dim=-1) if normalize else out

    def forward(self, image: torch.Tensor | None = None, ids: torch.Tensor | None = None
                ) -> tuple[torch.Tensor | None, torch.Tensor | None, torch.Tensor]:
        """Normalised image and text embeddings (either may be None) and ``logit_scale.exp()``."""
        img = self.encode_image(image, normalize=True) if image is not None else None
        txt = self.encode_text(ids, normalize=True) if ids is not None else None
        return img, txt, self.logit_scale.exp()


def create_clip(name: str, weights: Any = None, strict: bool = True,
                **vision_overrides: Any) -> CLIP:
    """PE-Core variant ``name`` as a :class:`CLIP` (see :func:`clip_models`), optionally with a
    full official CLIP checkpoint (path, ``hf://facebook/PE-Core-B16-224`` or a state dict).
    ``vision_overrides`` are :class:`PEViT` keyword arguments (e.g. ``image_size``)."""
    text = text_variant(name)
    overrides = {**CLIP_VISION_OVERRIDES.get(name, {}), **vision_overrides}
    visual = PEViT(**backbone_kwargs(name, overrides))
    model = CLIP(visual=visual, name=name, **asdict(text))
    if weights is not None:
        load_clip_weights(model, weights, strict=strict)
    return model


def create_text_tower(name: str, weights: Any = None, seed: int | None = None
                      ) -> tuple[TextTransformer, ClipTokenizer]:
    """Only the text tower of ``name`` and its tokenizer. ``weights``: a full CLIP checkpoint
    (its text keys are loaded strictly, the vision keys ignored); without weights the tower is
    random, reproducibly so when ``seed`` is set (the same seed gives the same tower)."""
    cfg = text_variant(name)
    with seeded(seed):
        tower = TextTransformer(**asdict(cfg))
    if weights is not None:
        sd = _checked_clip_state_dict(weights)
        text_sd = {k: v for k, v in sd.items()
                   if not k.startswith("visual.") and k != "logit_scale"}
        load_state_dict_checked(tower, text_sd, source_format="official CLIP (text tower)",
                                headline=_headline(name, sd))
    return tower, ClipTokenizer(cfg.context_length)


_TEXT_KEYS = ("token_embedding.weight", "text_projection")


def load_clip_weights(model: CLIP, source: str | os.PathLike | dict,
                      strict: bool = True) -> LoadReport:
    """Load a full CLIP checkpoint (official layout, any wrapper / ``module.`` prefix) into
    ``model`` through the strict-load report. A vision-only file (PE-Spatial, PE-Lang, a
    converted backbone) raises :class:`WeightLoadError` saying so."""
    sd = _checked_clip_state_dict(source)
    return load_state_dict_checked(model, sd, strict=strict, source_format="official CLIP",
                                   headline=_headline(model.name, sd))


def _checked_clip_state_dict(source: Any) -> dict[str, torch.Tensor]:
    """The flat state dict of a full CLIP checkpoint; WeightLoadError for vision-only files."""
    sd, _ = unwrap_state_dict(read_checkpoint(source))
    if not any(k.startswith("visual.") for k in sd):
        raise WeightLoadError(
            "this checkpoint has no 'visual.' keys: it is a vision tower only (a PE-Spatial or "
            "PE-Lang file, or a converted backbone), not a full CLIP checkpoint. create_clip "
            "needs an official PE-Core .pt with its text tower (e.g. hf://facebook/"
            "PE-Core-B16-224); load vision-only files with create_backbone")
    if not all(k in sd for k in _TEXT_KEYS):
        raise WeightLoadError(
            f"this checkpoint has vision weights but no text tower (no {' / '.join(_TEXT_KEYS)}):"
            " zero-shot classification and text prompts need a full PE-Core CLIP checkpoint "
            f"(models with a text tower: {', '.join(clip_models())})")
    return sd


def _headline(name: str, sd: dict[str, torch.Tensor]) -> str:
    """The strict-load headline, naming the text tower the checkpoint looks like."""
    emb = sd["token_embedding.weight"]
    layers = len({k.split(".")[2] for k in sd if k.startswith("transformer.resblocks.")})
    ctx = sd["positional_embedding"].shape[0] if "positional_embedding" in sd else None
    like = [n for n, t in TEXT_VARIANTS.items()
            if (t.width, t.layers, t.context_length) == (emb.shape[1], layers, ctx)]
    guess = f"; its text tower matches {', '.join(like)}" if like else ""
    return (f"CLIP checkpoint does not fit {name or 'the model'} (text tower width "
            f"{emb.shape[1]}, {layers} blocks, context {ctx}{guess})")
