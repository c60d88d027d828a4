"""Zero-shot image classification with PE-Core's CLIP.

Images are squashed to the model's native size (bilinear, as the official transform), the
labels embedded through every template and averaged (CLIP's prompt ensembling), and the
softmax of ``logit_scale.exp() * cosine`` ranks the labels.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from pe_dense.backbone.clip import CLIP
from pe_dense.backbone.inputs import normalize
from pe_dense.data.images import check_rgb, to_tensor
from pe_dense.tasks.open_vocab.prompts import check_prompts
from pe_dense.tasks.open_vocab.text_cache import TextEmbeddingCache

__all__ = ["ZeroShotClassifier", "squash"]


def squash(image: np.ndarray, size: int) -> torch.Tensor:
    """(H, W, 3) uint8 RGB -> (1, 3, size, size) uint8, aspect ratio not kept (bilinear,
    antialiased like PIL's resize in the official transform)."""
    t = to_tensor(check_rgb(image))[None].float()
    t = F.interpolate(t, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
    return t.round_().clamp_(0, 255).to(torch.uint8)


class ZeroShotClassifier:
    """``ZeroShotClassifier(clip, labels, templates)(images, topk)`` -> per image a list of
    ``(label, probability)``, best first."""

    def __init__(self, clip: CLIP, labels: Sequence[str], templates: Sequence[str] = ("{}",),
                 cache: str | None = None) -> None:
        self.clip = clip.eval()
        self.labels = tuple(check_prompts(labels))
        emb = TextEmbeddingCache(cache).get(clip, clip.tokenize, self.labels, tuple(templates))
        self.weights = emb.to(clip.logit_scale.device)  # (K, D)

    @torch.no_grad()
    def probabilities(self, images: Sequence[np.ndarray]) -> torch.Tensor:
        """uint8 (H, W, 3) images -> (N, K) label probabilities."""
        size = self.clip.visual.image_size
        device = self.clip.logit_scale.device
        batch = torch.cat([squash(im, size) for im in images]).to(device)
        feats = self.clip.encode_image(normalize(batch), normalize=True)
        return (self.clip.logit_scale.exp() * feats @ self.weights.T).softmax(-1).cpu()

    def __call__(self, images: Sequence[np.ndarray], topk: int = 5
                 ) -> list[list[tuple[str, float]]]:
        probs = self.probabilities(images)
        k = min(topk, len(self.labels))
        values, idx = probs.topk(k, dim=-1)
        return [[(self.labels[j], float(v)) for v, j in zip(vs.tolist(), ix.tolist(), strict=True)]
                for vs, ix in zip(values, idx, strict=True)]
