"""Training-free open-vocabulary segmentation from PE-Core's CLIP embedding: the patch tokens in
the image-text space (:func:`pe_dense.backbone.clip_dense.dense_clip_embeddings`, recipes
``maskclip`` and ``selfself``); the cosine with each prompt's text embedding (averaged over
templates), times ``logit_scale.exp()``, gives the logits.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from pe_dense.backbone.clip import CLIP
from pe_dense.backbone.clip_dense import RECIPES, dense_clip_embeddings
from pe_dense.tasks.open_vocab.model import TextSegmenter
from pe_dense.tasks.open_vocab.prompts import check_prompts
from pe_dense.tasks.open_vocab.text_cache import TextEmbeddingCache

__all__ = ["RECIPES", "ClipSegmenter", "dense_clip_embeddings"]


class ClipSegmenter(TextSegmenter):
    """A PE-Core :class:`CLIP` read densely. ``prompts``: class names; ``templates``: prompt
    templates averaged per class (``("{}",)`` = as typed); ``cache``: a text-embedding cache
    file (or None)."""

    def __init__(self, clip: CLIP, prompts: Sequence[str], *, recipe: str = "selfself",
                 layer: int = -1, templates: Sequence[str] = ("{}",),
                 residual: bool | None = None, ffn: bool | None = None,
                 cache: str | None = None) -> None:
        super().__init__()
        if recipe not in RECIPES:
            raise ValueError(f"recipe {recipe!r}: use one of {sorted(RECIPES)}")
        self.clip = clip
        self.clip.visual.take_indices([layer])  # a bad layer fails here, with the valid range
        self.recipe, self.layer, self.residual, self.ffn = recipe, layer, residual, ffn
        self.size_divisor = clip.visual.patch_size
        self.cache = TextEmbeddingCache(cache)
        self.register_buffer("class_embeddings", torch.zeros(0, clip.embed_dim),
                             persistent=False)
        self.set_prompts(prompts, templates)

    @property
    def backbone(self) -> torch.nn.Module:
        """The CLIP's vision tower (its ``normalize`` prepares the inputs)."""
        return self.clip.visual

    def set_prompts(self, prompts: Sequence[str], templates: Sequence[str] = ("{}",)) -> None:
        """Encode ``prompts`` (averaged over ``templates``) as the output classes."""
        self.prompts = tuple(check_prompts(prompts))
        emb = self.cache.get(self.clip, self.clip.tokenize, self.prompts, tuple(templates))
        self.class_embeddings = emb.to(self.clip.logit_scale.device)

    def class_vectors(self) -> torch.Tensor:
        return self.class_embeddings

    def logit_scale(self) -> torch.Tensor:
        return self.clip.logit_scale.exp()

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, 3, H, W) in [-1, 1] -> (B, D, H/p, W/p) image-text embeddings."""
        return dense_clip_embeddings(self.clip.visual, x, self.layer, self.recipe,
                                     self.residual, self.ffn)
