"""Contrastive image-text training of a PE-Core CLIP (the paper's stage 1, CLIP loss).

:class:`ContrastiveCLIP` wraps a :class:`pe_dense.backbone.clip.CLIP` (any variant with a text
tower, e.g. the small ``PE-Mini``) and trains both towers with the symmetric InfoNCE loss of
CLIP: for a batch of B images and their B captions, ``logits = exp(t) * image @ text.T``
(L2-normalised embeddings, ``t`` the learned log inverse temperature, clamped at log 100), and
``loss = (CE(logits, arange(B)) + CE(logits.T, arange(B))) / 2``.

``loss`` logs ``loss_clip`` and the unweighted monitors ``acc_i2t`` (share of images whose own
caption ranks first in the batch) and ``logit_scale``; ``predict`` returns each sample's image
and caption embeddings, from which :func:`retrieval_metrics` scores image <-> text retrieval over
a whole held-out set. The trained model is written in the official CLIP layout
(:func:`export_clip`), so ``create_clip(name, weights=...)``, ``pe-dense classify`` and
``pe-dense segment-text`` read it, and ``create_backbone(name, weights=...)`` its vision tower.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from pe_dense.backbone.clip import create_clip
from pe_dense.backbone.inputs import normalize
from pe_dense.backbone.weights import save_checkpoint
from pe_dense.utils.seeding import seeded

__all__ = ["ContrastiveCLIP", "clip_loss", "retrieval_metrics", "export_clip"]

MAX_LOGIT_SCALE = math.log(100.0)


def clip_loss(image: torch.Tensor, text: torch.Tensor, scale: torch.Tensor
              ) -> tuple[torch.Tensor, torch.Tensor]:
    """image, text: (B, D) L2-normalised, row i of each a pair; scale: () = exp(t).
    -> (symmetric cross-entropy loss, share of images whose own caption scores highest)."""
    logits = scale * image @ text.T
    target = torch.arange(len(image), device=image.device)
    loss = (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target)) / 2
    acc = (logits.argmax(dim=1) == target).float().mean()
    return loss, acc


def _captions(samples: Sequence[Any] | None, n: int) -> list[str]:
    if samples is None or len(samples) != n:
        raise ValueError(f"contrastive training needs one caption per image ({n} images, "
                         f"{0 if samples is None else len(samples)} captions)")
    return [s["caption"] if isinstance(s, dict) else str(s) for s in samples]


class ContrastiveCLIP(nn.Module):
    """A CLIP and its training objective.

    ``model``: a variant with a text tower (``pe_dense.backbone.clip.clip_models()``);
    ``weights``: an official-layout CLIP checkpoint to start from (None: random, drawn from
    ``seed``); ``vision``: vision-tower keyword overrides (e.g. ``drop_path``), as for
    ``create_clip``.
    Inputs: images (B, 3, S, S) uint8 RGB and samples ``[{"caption": str}, ...]``.
    """

    task = "contrastive"

    def __init__(self, model: str = "PE-Mini", weights: str | None = None, seed: int = 0,
                 vision: dict[str, Any] | None = None) -> None:
        super().__init__()
        self.variant = model
        with seeded(seed):
            self.clip = create_clip(model, weights=weights, **(vision or {}))

    def embed(self, images: torch.Tensor, captions: Sequence[str]
              ) -> tuple[torch.Tensor, torch.Tensor]:
        """uint8 (B, 3, S, S) images and B captions -> normalised (B, D) image and text
        embeddings."""
        image = self.clip.encode_image(normalize(images), normalize=True)
        text = self.clip.encode_text(self.clip.tokenize(list(captions)), normalize=True)
        return image, text

    def loss(self, images: torch.Tensor, samples: Sequence[Any]) -> dict[str, torch.Tensor]:
        image, text = self.embed(images, _captions(samples, len(images)))
        with torch.no_grad():
            self.clip.logit_scale.clamp_(0, MAX_LOGIT_SCALE)
        scale = self.clip.logit_scale.exp()
        loss, acc = clip_loss(image, text, scale)
        return {"loss_clip": loss, "acc_i2t": acc.detach(), "logit_scale": scale.detach()}

    @torch.no_grad()
    def predict(self, images: torch.Tensor, samples: Sequence[Any]) -> list[dict[str, Any]]:
        """Per sample ``{"image_emb": (D,), "text_emb": (D,)}`` (float32, CPU)."""
        image, text = self.embed(images, _captions(samples, len(images)))
        return [{"image_emb": i.float().cpu(), "text_emb": t.float().cpu()}
                for i, t in zip(image, text, strict=True)]

    def forward(self, images: torch.Tensor, sizes: Any = None) -> torch.Tensor:
        """uint8 (B, 3, S, S) -> (B, D) normalised image embeddings."""
        return self.clip.encode_image(normalize(images), normalize=True)


@torch.no_grad()
def retrieval_metrics(image: torch.Tensor, text: torch.Tensor) -> dict[str, float]:
    """(N, D) normalised image and caption embeddings of N pairs -> recall at 1 and 5, image to
    text (``i2t_r1`` ...) and text to image (``t2i_r1`` ...), over the whole set. A retrieved
    item whose caption is identical to the query's own (``"a red circle"`` can describe several
    images) counts as a hit."""
    sims = image @ text.T  # (N, N)
    same = torch.cdist(text, text) < 1e-5  # (N, N) symmetric: identical captions
    rows = torch.arange(len(sims))[:, None]
    out: dict[str, float] = {}
    for name, s in (("i2t", sims), ("t2i", sims.T)):
        for k in (1, 5):
            top = s.topk(min(k, s.shape[1]), dim=1).indices  # (N, k)
            out[f"{name}_r{k}"] = float(same[rows, top].any(1).float().mean())
    return out


def export_clip(model: ContrastiveCLIP, path: str | os.PathLike) -> Path:
    """Write the CLIP's weights in the official layout (``visual.*``, the text tower at the top
    level, ``logit_scale``) to ``path``, atomically."""
    state = {k: v.detach().cpu() for k, v in model.clip.state_dict().items()}
    save_checkpoint(state, path)
    return Path(path)
