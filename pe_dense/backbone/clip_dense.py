"""Dense CLIP embeddings of a PE-Core tower: every patch token carried into the image-text space
(the PE block surgery behind training-free open-vocabulary segmentation,
:mod:`pe_dense.tasks.open_vocab.dense_clip`).

A modified block ``layer`` (default the last; later blocks are skipped), then ``ln_post``, the
attention pool's value path applied to each token on its own (the pool's ``v`` and output
projections and its MLP residual: what the pool returns when its probe attends to one token
only) and ``proj``. Recipes for the modified block's attention, on ``ln_1`` of its input:

- ``"maskclip"`` (MaskCLIP): value embeddings only, each token attends to itself; residual and
  MLP kept;
- ``"selfself"`` (SCLIP / NACLIP-style self-self attention): ``softmax(q q^T) v +
  softmax(k k^T) v`` with RoPE on q and k, so a token attends to tokens like itself rather than
  to the global tokens PE-Core's late layers route everything through; residual and MLP dropped
  (as in SCLIP and ClearCLIP).

``residual`` / ``ffn`` override a recipe's choice.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from pe_dense.backbone.pe_vit import Block, PEViT
from pe_dense.backbone.rope import apply_rope, rope_table

__all__ = ["RECIPES", "dense_clip_embeddings"]

# recipe -> (keep the residual, keep the MLP) of the modified block
RECIPES = {"maskclip": (True, True), "selfself": (False, False)}


def _qkv(vit: PEViT, block: Block, y: torch.Tensor, grid: tuple[int, int]
         ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """y: (B, T, C) -> q, k (RoPE applied), v: (B, heads, T, head_dim)."""
    attn = block.attn
    b, t, c = y.shape
    qkv = F.linear(y, attn.in_proj_weight, attn.in_proj_bias)
    qkv = qkv.view(b, t, 3, attn.heads, attn.head_dim).transpose(1, 2)  # (B, 3, T, H, D)
    qk = qkv[:, :2]
    if vit.use_rope2d:
        prefix = vit.num_prefix_tokens
        table = rope_table(grid[0], grid[1], attn.head_dim, y.device, offset=float(prefix),
                           cls_token=bool(prefix))
        qk = apply_rope(qk, table)
    q, k = qk.permute(1, 0, 3, 2, 4).unbind(0)
    return q, k, qkv[:, 2].transpose(1, 2)


def _modified_attention(vit: PEViT, block: Block, y: torch.Tensor, grid: tuple[int, int],
                        recipe: str) -> torch.Tensor:
    """The recipe's attention of ``block`` on y = ln_1(x): (B, T, C) -> (B, T, C)."""
    b, t, c = y.shape
    q, k, v = _qkv(vit, block, y, grid)
    if recipe == "maskclip":
        out = v
    else:
        scale = block.attn.head_dim**-0.5
        out = F.scaled_dot_product_attention(q, q, v, scale=scale)
        out = out + F.scaled_dot_product_attention(k, k, v, scale=scale)
    return block.attn.out_proj(out.transpose(1, 2).reshape(b, t, c))


def _pool_values(vit: PEViT, x: torch.Tensor) -> torch.Tensor:
    """The attention pool applied to each token alone, then ``proj``: (B, T, C) -> (B, T, D)."""
    pool = vit.attn_pool
    if pool is None:
        return x @ vit.proj
    c = x.shape[-1]
    w_v, b_v = pool.attn.in_proj_weight[2 * c:], pool.attn.in_proj_bias[2 * c:]
    x = pool.attn.out_proj(F.linear(x, w_v, b_v))
    x = x + pool.mlp(pool.layernorm(x))
    return x @ vit.proj


def dense_clip_embeddings(vit: PEViT, x: torch.Tensor, layer: int = -1,
                          recipe: str = "selfself", residual: bool | None = None,
                          ffn: bool | None = None) -> torch.Tensor:
    """x: (B, 3, H, W) in [-1, 1] -> patch embeddings in the image-text space
    (B, D, H/p, W/p), block ``layer`` modified by ``recipe`` (see the module docstring)."""
    if recipe not in RECIPES:
        raise ValueError(f"recipe {recipe!r}: use one of {sorted(RECIPES)}")
    if not isinstance(vit, PEViT) or not hasattr(vit, "proj"):
        raise ValueError("dense CLIP embeddings need a PE-Core tower (with its projection); "
                         f"got {getattr(vit, 'name', '') or type(vit).__name__}")
    stop = vit.take_indices([layer])[0]
    if stop == 0:
        raise ValueError("layer must be 1 or later: the modified block needs a block before it")
    keep_res, keep_ffn = RECIPES[recipe]
    keep_res = keep_res if residual is None else residual
    keep_ffn = keep_ffn if ffn is None else ffn
    grid = (x.shape[-2] // vit.patch_size, x.shape[-1] // vit.patch_size)
    tokens = vit.forward_features(x, layer=stop - 1)
    block = vit.transformer.resblocks[stop]
    out = block.ls_1(_modified_attention(vit, block, block.ln_1(tokens), grid, recipe))
    if keep_res:
        out = tokens + out
    if keep_ffn:
        out = out + block.ls_2(block.mlp(block.ln_2(out)))
    out = _pool_values(vit, vit.ln_post(out))[:, vit.num_prefix_tokens:]
    return out.transpose(1, 2).reshape(x.shape[0], -1, *grid)
