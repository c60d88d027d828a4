"""PEViT: the one Perception Encoder vision transformer used by everything in pe_dense.

Parameter names equal the official ``core/vision_encoder/pe.py`` state-dict keys, so official
checkpoints load strictly. Numerics follow the official feature model: integer-position 2D RoPE,
a learned absolute position embedding resampled bilinearly (no antialias) for other grids,
``ln_pre`` before the blocks, optional LayerScale, ``ln_post`` and attention pooling (Core).

High-resolution (ViTDet-style) options, as in the official detection backbone:
- ``window_size`` / ``global_blocks``: blocks not listed in ``global_blocks`` attend within
  ``window_size`` x ``window_size`` windows (grids are padded and padded keys masked out). In
  windowed mode the cls token is not used (ViTDet drops it), so ``num_prefix_tokens`` is 0.
- ``posemb_mode="tile"``: repeat the pretrained position grid instead of resampling it.
- ``rope_mode="interpolate"``: scale RoPE positions by ``pretrain_grid / grid`` (global blocks
  and windows) instead of extrapolating integer positions.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

from pe_dense.backbone.contract import Backbone
from pe_dense.backbone.rope import RopeTable, apply_rope, rope_table

__all__ = ["PEViT", "layer_id"]

_EMBED_NAMES = ("conv1.", "positional_embedding", "class_embedding", "ln_pre.")

def drop_path(x: torch.Tensor, prob: float, training: bool) -> torch.Tensor:
    """Stochastic depth: zero whole samples of a residual branch with probability ``prob``."""
    if prob == 0.0 or not training:
        return x
    keep = 1.0 - prob
    mask = x.new_empty((x.shape[0],) + (1,) * (x.ndim - 1)).bernoulli_(keep)
    return x * mask / keep


class LayerScale(nn.Module):
    """Per-channel residual scale ``x * gamma`` (official key ``ls_*.gamma``)."""

    def __init__(self, dim: int, init_value: float) -> None:
        super().__init__()
        self.gamma = nn.Parameter(torch.full((dim,), float(init_value)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gamma


class Attention(nn.Module):
    """Multi-head self-attention with a fused ``[q; k; v]`` projection and 2D RoPE on q and k."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"width {dim} is not divisible by heads {heads}")
        self.heads = heads
        self.head_dim = dim // heads
        self.in_proj_weight = nn.Parameter(torch.empty(3 * dim, dim))
        self.in_proj_bias = nn.Parameter(torch.zeros(3 * dim))
        self.out_proj = nn.Linear(dim, dim)
        nn.init.xavier_uniform_(self.in_proj_weight)
        nn.init.zeros_(self.out_proj.bias)

    def forward(
        self, x: torch.Tensor, rope: RopeTable | None, key_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """x: (B, T, C); rope: (T, head_dim / 2) complex rotations; key_mask: (B, 1, 1, T)
        bool, True for keys to attend to. Returns (B, T, C)."""
        b, t, c = x.shape
        qkv = F.linear(x, self.in_proj_weight, self.in_proj_bias)
        qkv = qkv.view(b, t, 3, self.heads, self.head_dim).transpose(1, 2)  # (B, 3, T, H, D)
        v = qkv[:, 2].transpose(1, 2)
        qk = qkv[:, :2] if rope is None else apply_rope(qkv[:, :2], rope)  # q and k together
        q, k = qk.permute(1, 0, 3, 2, 4).unbind(0)  # 2 x (B, H, T, D)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=key_mask,
                                             scale=self.head_dim**-0.5)
        return self.out_proj(out.transpose(1, 2).reshape(b, t, c))


class Block(nn.Module):
    """Pre-norm residual block; ``window_size > 0`` makes its attention windowed."""

    def __init__(self, dim: int, heads: int, mlp_width: int, ls_init_value: float | None,
                 drop_path: float, window_size: int) -> None:
        super().__init__()
        self.ln_1 = nn.LayerNorm(dim, eps=1e-5)
        self.attn = Attention(dim, heads)
        self.ls_1 = LayerScale(dim, ls_init_value) if ls_init_value is not None else nn.Identity()
        self.ln_2 = nn.LayerNorm(dim, eps=1e-5)
        self.mlp = nn.Sequential(OrderedDict([
            ("c_fc", nn.Linear(dim, mlp_width)),
            ("gelu", nn.GELU()),
            ("c_proj", nn.Linear(mlp_width, dim)),
        ]))
        self.ls_2 = LayerScale(dim, ls_init_value) if ls_init_value is not None else nn.Identity()
        self.drop_path = drop_path
        self.window_size = window_size

    def forward(self, x: torch.Tensor, rope: RopeTable | None,
                grid: tuple[int, int]) -> torch.Tensor:
        """x: (B, T, C) with T = grid_h * grid_w (+ prefix tokens in global blocks)."""
        y = self.ln_1(x)
        if self.window_size:
            y = self._window_attention(y, rope, grid)
        else:
            y = self.attn(y, rope)
        x = x + drop_path(self.ls_1(y), self.drop_path, self.training)
        return x + drop_path(self.ls_2(self.mlp(self.ln_2(x))), self.drop_path, self.training)

    def _window_attention(self, x: torch.Tensor, rope: RopeTable | None,
                          grid: tuple[int, int]) -> torch.Tensor:
        b, _, c = x.shape
        (gh, gw), ws = grid, self.window_size
        windows, padded = window_partition(x.view(b, gh, gw, c), ws)
        key_mask = None
        if _tracing() or padded != (gh, gw):  # traced graphs mask always (any grid)
            rows = torch.arange(padded[0], device=x.device) < gh
            cols = torch.arange(padded[1], device=x.device) < gw
            valid = (rows[:, None] & cols[None, :]).view(1, padded[0], padded[1], 1)
            valid, _ = window_partition(valid, ws)  # (nW, ws*ws, 1)
            key_mask = valid.view(-1, 1, 1, ws * ws).repeat(b, 1, 1, 1)
        out = self.attn(windows, rope, key_mask)
        return window_unpartition(out, ws, padded, (gh, gw)).reshape(b, gh * gw, c)


def window_partition(x: torch.Tensor, ws: int) -> tuple[torch.Tensor, tuple[int, int]]:
    """(B, H, W, C) -> (B * nW, ws * ws, C) windows (row-major), zero-padding H and W up to a
    multiple of ``ws``. Also returns the padded size."""
    b, h, w, c = x.shape
    # window counts by a ceil of non-negative integers (exact for traced sizes and ONNX Div)
    nh, nw = (h + ws - 1) // ws, (w + ws - 1) // ws
    hp, wp = nh * ws, nw * ws
    if _tracing() or hp != h or wp != w:  # traced graphs pad always (by 0 where the grid fits)
        x = F.pad(x, (0, 0, 0, wp - w, 0, hp - h))
    x = x.view(b, nh, ws, nw, ws, c).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(b * nh * nw, ws * ws, c), (hp, wp)


def window_unpartition(windows: torch.Tensor, ws: int, padded: tuple[int, int],
                       size: tuple[int, int]) -> torch.Tensor:
    """Inverse of :func:`window_partition`: (B * nW, ws * ws, C) -> (B, H, W, C)."""
    (hp, wp), (h, w) = padded, size
    c = windows.shape[-1]
    x = windows.view(-1, hp // ws, wp // ws, ws, ws, c).permute(0, 1, 3, 2, 4, 5)
    x = x.reshape(-1, hp, wp, c)
    if _tracing():  # gathered copies: a slice or view of traced sizes would fix the padding
        x = x.index_select(1, torch.arange(h, device=x.device))
        return x.index_select(2, torch.arange(w, device=x.device))
    return x[:, :h, :w]


class Transformer(nn.Module):
    """Holds the blocks under the official key prefix ``transformer.resblocks``."""

    def __init__(self, blocks: list[Block]) -> None:
        super().__init__()
        self.resblocks = nn.ModuleList(blocks)


class AttentionPooling(nn.Module):
    """Core's attention pool: one learned probe attends over all tokens, then an MLP residual."""

    def __init__(self, dim: int, heads: int, mlp_ratio: int = 4) -> None:
        super().__init__()
        self.probe = nn.Parameter(torch.randn(1, 1, dim))
        self.attn = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.layernorm = nn.LayerNorm(dim, eps=1e-5)
        self.mlp = nn.Sequential(OrderedDict([
            ("c_fc", nn.Linear(dim, dim * mlp_ratio)),
            ("gelu", nn.GELU()),
            ("c_proj", nn.Linear(dim * mlp_ratio, dim)),
        ]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, T, C) -> (B, C)."""
        probe = self.probe.expand(x.shape[0], -1, -1).to(x.dtype)
        x = self.attn(probe, x, x, need_weights=False)[0]
        return (x + self.mlp(self.layernorm(x))).squeeze(1)


class PEViT(Backbone):
    """The PE vision tower. Build a variant with ``PEViT(**asdict(VARIANTS[name]))``
    (or ``create_backbone(name)``), the first implementation of the backbone contract
    (:class:`~pe_dense.backbone.contract.Backbone`).

    Input images are ``(B, 3, H, W)`` float, normalised with mean = std = 0.5 (values in
    [-1, 1], :meth:`normalize`); H and W must be multiples of ``patch_size``.
    """

    input_mean = (0.5, 0.5, 0.5)
    input_std = (0.5, 0.5, 0.5)
    supports_windowed = True

    def __init__(
        self, *, patch_size: int, width: int, layers: int, heads: int, mlp_width: int,
        image_size: int, output_dim: int | None = None, ls_init_value: float | None = None,
        use_cls_token: bool = False, use_abs_posemb: bool = True, use_rope2d: bool = True,
        use_ln_pre: bool = True, use_ln_post: bool = False, pool_type: str = "none",
        attn_pooler_heads: int = 8, drop_path: float = 0.0, window_size: int = 0,
        global_blocks: Sequence[int] = (), posemb_mode: str = "interpolate",
        rope_mode: str = "extrapolate", pretrain_image_size: int | None = None,
        grad_checkpointing: bool = False,
    ) -> None:
        """``pretrain_image_size`` sets the position-embedding grid (default ``image_size``);
        the detection configs set ``image_size=1024`` with the checkpoint's pretraining size.
        ``drop_path`` is the rate of the last block, rising linearly from 0 at the first."""
        super().__init__()
        _check_choice("pool_type", pool_type, ("none", "attn", "avg", "tok"))
        _check_choice("posemb_mode", posemb_mode, ("interpolate", "tile"))
        _check_choice("rope_mode", rope_mode, ("extrapolate", "interpolate"))
        if pool_type == "attn" and output_dim is None:
            raise ValueError("pool_type='attn' (Core) needs output_dim for the projection")
        self.patch_size, self.embed_dim, self.num_layers = patch_size, width, layers
        self.image_size, self.pool_type = image_size, pool_type
        self.window_size = window_size
        self.global_blocks = tuple(sorted(i % layers for i in global_blocks))
        self.posemb_mode, self.rope_mode = posemb_mode, rope_mode
        self.use_rope2d, self.use_cls_token = use_rope2d, use_cls_token
        self.grad_checkpointing = grad_checkpointing
        self.posemb_grid = (pretrain_image_size or image_size) // patch_size
        self.num_prefix_tokens = int(use_cls_token and not window_size)
        self._build_embeddings(use_abs_posemb, use_ln_pre)
        rates = [drop_path * i / max(layers - 1, 1) for i in range(layers)]
        self.transformer = Transformer([
            Block(width, heads, mlp_width, ls_init_value, rates[i],
                  window_size if window_size and i not in self.global_blocks else 0)
            for i in range(layers)
        ])
        self.ln_post = nn.LayerNorm(width, eps=1e-5) if use_ln_post else nn.Identity()
        self.attn_pool = AttentionPooling(width, attn_pooler_heads) if pool_type == "attn" else None
        if output_dim is not None:
            self.proj = nn.Parameter(width**-0.5 * torch.randn(width, output_dim))

    def _build_embeddings(self, use_abs_posemb: bool, use_ln_pre: bool) -> None:
        """Patch kernel, class token, absolute position embedding and pre-norm (official
        names). Windowed models drop the class token from the sequence: its parameter stays (so
        checkpoints load) but is frozen, so that DDP sees no unused trainable parameter."""
        width, scale = self.embed_dim, self.embed_dim**-0.5
        self.conv1 = nn.Conv2d(3, width, kernel_size=self.patch_size, stride=self.patch_size,
                               bias=False)
        if self.use_cls_token:
            self.class_embedding = nn.Parameter(scale * torch.randn(width))
            self.class_embedding.requires_grad_(bool(self.num_prefix_tokens))
        if use_abs_posemb:
            n_pos = self.posemb_grid**2 + int(self.use_cls_token)
            self.positional_embedding = nn.Parameter(scale * torch.randn(n_pos, width))
        self.ln_pre = nn.LayerNorm(width, eps=1e-5) if use_ln_pre else nn.Identity()

    # ------------------------------------------------------------------ public API

    def set_grad_checkpointing(self, enable: bool = True) -> None:
        """Recompute block activations in backward (same outputs and gradients, less memory)."""
        self.grad_checkpointing = enable

    def truncate(self, layer: int) -> PEViT:
        """Delete the blocks after block ``layer`` (0-based, -1 the last), e.g. for a teacher."""
        stop = self._block_index(layer)
        self.transformer.resblocks = self.transformer.resblocks[: stop + 1]
        self.num_layers = stop + 1
        self.global_blocks = tuple(i for i in self.global_blocks if i <= stop)
        return self

    def take_indices(self, indices: int | Sequence[int]) -> list[int]:
        """Normalise block indices to 0-based non-negative ones, in the given order.

        ``indices``: an int n for the last n blocks (e.g. 4 on a 12-block model ->
        ``[8, 9, 10, 11]``), or a sequence of block indices, negatives counted from the end
        (``(3, 7, -1)`` -> ``[3, 7, 11]``). Out-of-range values raise a ``ValueError`` that
        states the valid range.
        """
        n = self.num_layers
        if isinstance(indices, int):
            if not 1 <= indices <= n:
                raise ValueError(f"indices={indices}: ask for 1..{n} last blocks (an int n "
                                 "means the last n), or pass a list of block indices")
            return list(range(n - indices, n))
        taken = [self._block_index(int(i)) for i in indices]
        if not taken:
            raise ValueError("indices is empty: pass at least one block index, e.g. [-1]")
        return taken

    def forward_features(self, x: torch.Tensor, layer: int = -1, norm: bool = False,
                         strip_cls: bool = False) -> torch.Tensor:
        """Tokens after block ``layer`` (0-based, -1 the last), official semantics.

        x: (B, 3, H, W). Returns (B, T, C), T = (H/p)(W/p) + num_prefix_tokens (cls first)
        unless ``strip_cls``; ``norm`` applies ``ln_post`` (Identity for Spatial and Lang).
        """
        stop = self._block_index(layer)
        x, grid = self._embed(x)
        tables = self._rope_tables(grid, x.device)
        for block in self.transformer.resblocks[: stop + 1]:
            x = self._run_block(block, x, tables, grid)
        if norm:
            x = self.ln_post(x)
        return x[:, self.num_prefix_tokens:] if strip_cls else x

    def forward_intermediates(
        self,
        x: torch.Tensor,
        indices: int | Sequence[int] = 1,
        norm: bool = False,
        output_fmt: str = "NCHW",
    ) -> list[torch.Tensor]:
        """Patch-token maps after several blocks, in one pass.

        ``indices``: block indices (0-based, negatives from the end), or an int n for the last
        n blocks. Prefix (cls) tokens are removed. ``norm`` applies ``ln_post``.
        Returns a list in the order of ``indices``: (B, C, H/p, W/p) for ``"NCHW"`` or
        (B, (H/p)(W/p), C) for ``"NLC"``.
        """
        _check_choice("output_fmt", output_fmt, ("NCHW", "NLC"))
        wanted = self.take_indices(indices)
        x, (gh, gw) = self._embed(x)
        tables = self._rope_tables((gh, gw), x.device)
        taps: dict[int, torch.Tensor] = {}
        for i, block in enumerate(self.transformer.resblocks[: max(wanted) + 1]):
            x = self._run_block(block, x, tables, (gh, gw))
            if i in wanted:
                taps[i] = (self.ln_post(x) if norm else x)[:, self.num_prefix_tokens:]
        if output_fmt == "NLC":
            return [taps[i] for i in wanted]
        return [taps[i].transpose(1, 2).reshape(x.shape[0], -1, gh, gw) for i in wanted]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The image embedding: (B, output_dim) for Core (attention pool + projection),
        (B, C) for ``avg``/``tok`` pooling, and the normed tokens (B, T, C) for ``none``."""
        x = self.forward_features(x, norm=True)
        if self.pool_type == "attn":
            x = self.attn_pool(x)
        elif self.pool_type == "avg":
            x = x[:, self.num_prefix_tokens:].mean(dim=1)
        elif self.pool_type == "tok":
            x = x[:, 0]
        return x @ self.proj if hasattr(self, "proj") else x

    def no_weight_decay(self) -> set[str]:
        """Parameter names conventionally exempt from weight decay."""
        return {"positional_embedding", "class_embedding", "attn_pool.probe"}

    def layer_id(self, name: str) -> int:
        """Layer-wise lr decay depth of parameter ``name`` (see :func:`layer_id`)."""
        return layer_id(name, self.num_layers)

    def blocks(self) -> list[nn.Module]:
        """The residual blocks in order (``transformer.resblocks``)."""
        return list(self.transformer.resblocks)

    # ------------------------------------------------------------------ internals

    def _block_index(self, layer: int) -> int:
        if not -self.num_layers <= layer < self.num_layers:
            raise ValueError(
                f"layer {layer} is out of range for a {self.num_layers}-block model: "
                f"use 0..{self.num_layers - 1} or -{self.num_layers}..-1"
            )
        return layer % self.num_layers

    def _check_input(self, x: torch.Tensor) -> None:
        if x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"expected images of shape (B, 3, H, W), got {tuple(x.shape)}; "
                             "convert grey or RGBA images to RGB first")
        h, w = x.shape[-2:]
        p = self.patch_size
        if h < p or w < p:
            raise ValueError(f"input {h}x{w} is smaller than one {p}x{p} patch")
        if h % p or w % p:
            h2, w2 = max(p, round(h / p) * p), max(p, round(w / p) * p)
            raise ValueError(f"input {h}x{w} is not a multiple of patch {p}; nearest valid "
                             f"{h2}x{w2} (resize or pad the image)")

    def _embed(self, x: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int]]:
        """Patchify, add cls and position embedding, ln_pre. Returns (B, T, C) and the grid."""
        self._check_input(x)
        b = x.shape[0]
        x = self.conv1(x)
        grid = (x.shape[2], x.shape[3])
        x = x.flatten(2).transpose(1, 2)
        if self.num_prefix_tokens:
            cls = self.class_embedding.view(1, 1, -1).expand(b, -1, -1).to(x.dtype)
            x = torch.cat([cls, x], dim=1)
        if hasattr(self, "positional_embedding"):
            x = x + self._position_embedding(grid).to(x.dtype)
        return self.ln_pre(x), grid

    def _position_embedding(self, grid: tuple[int, int]) -> torch.Tensor:
        """The learned embedding for ``grid``: (1, T, C) including the cls entry if used."""
        pos = self.positional_embedding
        n = self.posemb_grid
        cls_pos, patch_pos = (pos[:1], pos[1:]) if self.use_cls_token else (pos[:0], pos)
        # When tracing, resample unconditionally (the identity at the pretraining grid): a
        # comparison of the symbolic grid would fix it in a dynamic-shape export.
        if _tracing() or grid != (n, n):
            patch_pos = patch_pos.reshape(1, n, n, -1)
            if self.posemb_mode == "tile":
                reps = ((grid[0] + n - 1) // n, (grid[1] + n - 1) // n)  # ceil, in integers
                patch_pos = patch_pos.tile(1, reps[0], reps[1], 1)
                patch_pos = patch_pos.narrow(1, 0, grid[0]).narrow(2, 0, grid[1])
            else:
                patch_pos = F.interpolate(patch_pos.permute(0, 3, 1, 2), size=grid,
                                          mode="bilinear", align_corners=False)
                patch_pos = patch_pos.permute(0, 2, 3, 1)
            patch_pos = patch_pos.reshape(grid[0] * grid[1], -1)
        if self.num_prefix_tokens:
            patch_pos = torch.cat([cls_pos, patch_pos], dim=0)
        return patch_pos[None]

    def _rope_tables(self, grid: tuple[int, int], device: torch.device) -> dict[str, RopeTable]:
        """RoPE tables for global blocks and (if windowed) window blocks, from the cache."""
        if not self.use_rope2d:
            return {}
        head_dim = self.embed_dim // self.transformer.resblocks[0].attn.heads
        interp = self.rope_mode == "interpolate"
        n = self.posemb_grid
        # Under torch.compile / torch.export the pure table function is traced directly (the
        # cache would hash symbolic sizes and so fix the grid of a dynamic-shape export).
        table_fn = rope_table.__wrapped__ if _tracing() else rope_table
        tables = {"global": table_fn(
            grid[0], grid[1], head_dim, device, offset=float(self.num_prefix_tokens),
            scale_h=_ratio(n, grid[0]) if interp else 1.0,
            scale_w=_ratio(n, grid[1]) if interp else 1.0,
            cls_token=bool(self.num_prefix_tokens))}
        if self.window_size:
            ws = self.window_size
            s = n / ws if interp else 1.0
            tables["window"] = table_fn(ws, ws, head_dim, device, scale_h=s, scale_w=s)
        return tables

    def _run_block(self, block: Block, x: torch.Tensor, tables: dict[str, RopeTable],
                   grid: tuple[int, int]) -> torch.Tensor:
        rope = tables.get("window" if block.window_size else "global")
        if self.grad_checkpointing and torch.is_grad_enabled():
            return checkpoint(block, x, rope, grid, use_reentrant=False)
        return block(x, rope, grid)


def layer_id(name: str, num_layers: int) -> int:
    """Depth of a PEViT parameter for layer-wise lr decay (the official
    ``get_vit_lr_decay_rate_pev1`` rule); ``name`` is relative to the PEViT.

    0 for the embedding (``conv1``, ``positional_embedding``, ``class_embedding``, ``ln_pre``),
    ``i + 1`` for ``transformer.resblocks.i``, ``num_layers + 1`` for everything after the blocks
    (``ln_post``, pooling, projection) and for parameters outside the backbone. The lr multiplier
    is then ``decay ** (num_layers + 1 - layer_id)``.
    """
    if name.startswith(_EMBED_NAMES):
        return 0
    if name.startswith("transformer.resblocks."):
        return int(name.split(".")[2]) + 1
    return num_layers + 1


def _tracing() -> bool:
    """True under torch.compile, torch.export and the ONNX (dynamo) exporter."""
    return torch.compiler.is_compiling() or torch.compiler.is_exporting()


def _ratio(num: int, den: int) -> float | tuple[int, int]:
    """``num / den``; when tracing the pair itself (the grid may be symbolic: see rope_table)."""
    return (num, den) if _tracing() else num / den


def _check_choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ValueError(f"{name}={value!r} is not one of {choices}")
