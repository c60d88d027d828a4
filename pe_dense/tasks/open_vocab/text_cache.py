"""Text embeddings of prompts (averaged over templates), computed once and cached.

:func:`encode_prompts` runs a text tower on every prompt in every template and averages the
L2-normalised embeddings per prompt (then normalises again), as CLIP zero-shot evaluations do.
:class:`TextEmbeddingCache` keeps them in a ``.pt`` file keyed by the text tower's weights
fingerprint, the prompts and the templates, so training (the bridge) and repeated runs never run
the frozen text tower twice for the same prompts.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
import torch.nn.functional as F

from pe_dense.backbone.checkpoints import CheckpointError, load_object
from pe_dense.backbone.text import TextTransformer
from pe_dense.tasks.open_vocab.prompts import check_prompts, expand
from pe_dense.utils.io import atomic_path

__all__ = ["encode_prompts", "fingerprint", "TextEmbeddingCache"]

log = logging.getLogger(__name__)


@torch.no_grad()
def encode_prompts(text: TextTransformer, tokenize: Callable[[list[str]], torch.Tensor],
                   prompts: Sequence[str], templates: Sequence[str] = ("{}",),
                   batch_size: int = 256) -> torch.Tensor:
    """K prompts x T templates -> (K, D) float32, L2-normalised template averages."""
    prompts = check_prompts(prompts)
    texts = expand(prompts, templates)
    device = text.text_projection.device
    chunks = [text.encode_ids(tokenize(texts[i: i + batch_size]).to(device))
              for i in range(0, len(texts), batch_size)]
    emb = F.normalize(torch.cat(chunks).float(), dim=-1)
    return F.normalize(emb.view(len(prompts), len(templates), -1).mean(1), dim=-1)


def fingerprint(text: TextTransformer) -> str:
    """A short hash of the text tower's weights (projection and position embedding bytes)."""
    h = hashlib.sha1()
    for t in (text.text_projection, text.positional_embedding, text.ln_final.weight):
        h.update(t.detach().float().cpu().numpy().tobytes())
    return h.hexdigest()[:16]


class TextEmbeddingCache:
    """``cache.get(text, tokenize, prompts, templates)`` -> (K, D), from ``path`` when it holds
    these prompts for these weights, else computed and written (atomically). ``path=None``
    computes every time."""

    def __init__(self, path: str | os.PathLike | None) -> None:
        self.path = Path(path) if path else None

    def _read(self) -> dict[str, torch.Tensor]:
        if self.path is None or not self.path.is_file():
            return {}
        try:
            return dict(load_object(self.path))
        except (CheckpointError, OSError, TypeError, ValueError) as exc:  # recomputed, not fatal
            log.warning("ignoring unreadable text-embedding cache %s (%s)", self.path, exc)
            return {}

    def get(self, text: TextTransformer, tokenize: Callable[[list[str]], torch.Tensor],
            prompts: Sequence[str], templates: Sequence[str] = ("{}",)) -> torch.Tensor:
        key = hashlib.sha1("\x00".join([fingerprint(text), *prompts, "\x01", *templates])
                           .encode()).hexdigest()
        stored = self._read()
        if key in stored:
            return stored[key]
        emb = encode_prompts(text, tokenize, prompts, templates)
        if self.path is not None:
            stored[key] = emb.cpu()
            with atomic_path(self.path) as tmp:
                torch.save(stored, tmp)
            log.info("cached %d text embeddings in %s", len(prompts), self.path)
        return emb
