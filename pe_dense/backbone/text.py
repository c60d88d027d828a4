"""PE-Core's text tower: a causal transformer over CLIP BPE ids, pooled at the end token.

Parameter names equal the official ``TextTransformer`` (``core/vision_encoder/pe.py``):
``token_embedding``, ``positional_embedding`` (context_length, width),
``transformer.resblocks.{i}.{ln_1, attn.in_proj_weight, attn.in_proj_bias, attn.out_proj, ln_2,
mlp.c_fc, mlp.c_proj}``, ``ln_final`` and ``text_projection`` (width, output_dim). Numerics:
token + position embedding, pre-norm blocks with a causal mask (exact-erf GELU, LayerNorm eps
1e-5, no RoPE), ``ln_final`` on every token, the token at the argmax of the ids (the end token,
which has the highest id) projected by ``text_projection``.

Text towers exist for PE-Core only (:data:`TEXT_VARIANTS`); PE-Lang is aligned to a language
model, not to a text tower, and PE-Spatial has none.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

import torch
from torch import nn

from pe_dense.backbone.pe_vit import Attention

__all__ = ["TextConfig", "TEXT_VARIANTS", "TextTransformer", "text_variant"]


@dataclass(frozen=True)
class TextConfig:
    """Architecture of one PE text tower (``docs/pe_reference.md`` section 1.1)."""

    context_length: int
    width: int
    heads: int
    layers: int
    output_dim: int
    mlp_ratio: float = 4.0
    vocab_size: int = 49408


_LB = TextConfig(context_length=32, width=1024, heads=16, layers=24, output_dim=1024)
_ST = TextConfig(context_length=32, width=512, heads=8, layers=12, output_dim=512)
TEXT_VARIANTS: dict[str, TextConfig] = {
    "PE-Core-G14-448": TextConfig(context_length=72, width=1280, heads=20, layers=24,
                                  output_dim=1280),
    "PE-Core-L14-336": _LB,
    "PE-Core-B16-224": _LB,
    "PE-Core-S16-384": _ST,
    "PE-Core-T16-384": _ST,
    # A tiny tower for tests and CPU configs, paired with the PE-Test vision tower.
    "PE-Test": TextConfig(context_length=16, width=64, heads=4, layers=2, output_dim=32),
    # The text tower of PE-Mini (the paper in miniature): 32 tokens fit its scene captions.
    "PE-Mini": TextConfig(context_length=32, width=96, heads=4, layers=3, output_dim=64),
}


def text_variant(name: str) -> TextConfig:
    """The text tower of variant ``name``; a ``ValueError`` naming the models that have one."""
    if name not in TEXT_VARIANTS:
        have = ", ".join(TEXT_VARIANTS)
        why = (" PE-Spatial and PE-Lang have no text tower: for text prompts on PE-Spatial "
               "train a bridge (configs/open_vocab/) and pass --bridge." if
               name.startswith(("PE-Spatial", "PE-Lang")) else "")
        raise ValueError(f"{name!r} has no text tower.{why} Models with one: {have}")
    return TEXT_VARIANTS[name]


class TextBlock(nn.Module):
    """Pre-norm causal block; its attention keys equal ``nn.MultiheadAttention``'s."""

    def __init__(self, width: int, heads: int, mlp_width: int) -> None:
        super().__init__()
        self.ln_1 = nn.LayerNorm(width, eps=1e-5)
        self.attn = Attention(width, heads)
        self.ln_2 = nn.LayerNorm(width, eps=1e-5)
        self.mlp = nn.Sequential(OrderedDict([
            ("c_fc", nn.Linear(width, mlp_width)),
            ("gelu", nn.GELU()),
            ("c_proj", nn.Linear(mlp_width, width)),
        ]))

    def forward(self, x: torch.Tensor, causal: torch.Tensor) -> torch.Tensor:
        """x: (N, T, C); causal: (T, T) bool, True where a token may attend."""
        x = x + self.attn(self.ln_1(x), None, causal)
        return x + self.mlp(self.ln_2(x))


class _Blocks(nn.Module):
    def __init__(self, blocks: list[TextBlock]) -> None:
        super().__init__()
        self.resblocks = nn.ModuleList(blocks)


class TextTransformer(nn.Module):
    """The text tower. ``TextTransformer(**asdict(TEXT_VARIANTS[name]))``.

    ``forward(ids)``: (N, T) int64 token ids, T <= ``context_length`` (from
    :class:`pe_dense.backbone.tokenizer.ClipTokenizer`) -> (N, output_dim) embeddings.
    """

    def __init__(self, *, context_length: int, width: int, heads: int, layers: int,
                 output_dim: int, mlp_ratio: float = 4.0, vocab_size: int = 49408) -> None:
        super().__init__()
        self.context_length, self.vocab_size = context_length, vocab_size
        self.text_width, self.text_heads = width, heads
        self.token_embedding = nn.Embedding(vocab_size, width)
        self.positional_embedding = nn.Parameter(0.01 * torch.randn(context_length, width))
        mlp_width = int(width * mlp_ratio)
        self.transformer = _Blocks([TextBlock(width, heads, mlp_width) for _ in range(layers)])
        self.ln_final = nn.LayerNorm(width, eps=1e-5)
        self.text_projection = nn.Parameter(width**-0.5 * torch.randn(width, output_dim))
        nn.init.normal_(self.token_embedding.weight, std=0.02)

    def text_tokens(self, ids: torch.Tensor) -> torch.Tensor:
        """ids: (N, T) -> every token after ``ln_final``: (N, T, width)."""
        if ids.ndim != 2:
            raise ValueError(f"expected token ids of shape (N, T), got {tuple(ids.shape)}; "
                             "tokenize the prompts first (clip.tokenize)")
        n, t = ids.shape
        if n == 0 or t == 0:
            raise ValueError("no prompts to encode: pass at least one (an empty string is a "
                             "valid prompt)")
        if t > self.context_length:
            raise ValueError(f"{t} token ids per prompt, but this text tower's context is "
                             f"{self.context_length}; tokenize with its context_length")
        if int(ids.max()) >= self.vocab_size or int(ids.min()) < 0:
            raise ValueError(f"token ids must lie in 0..{self.vocab_size - 1}")
        x = self.token_embedding(ids) + self.positional_embedding[:t].to(
            self.token_embedding.weight.dtype)
        causal = torch.ones(t, t, dtype=torch.bool, device=ids.device).tril()
        for block in self.transformer.resblocks:
            x = block(x, causal)
        return self.ln_final(x)

    def encode_ids(self, ids: torch.Tensor) -> torch.Tensor:
        """ids: (N, T) -> (N, output_dim): the end-token (argmax id) feature, projected."""
        x = self.text_tokens(ids)
        pooled = x[torch.arange(x.shape[0], device=x.device), ids.argmax(dim=-1)]
        return pooled @ self.text_projection

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.encode_ids(ids)
