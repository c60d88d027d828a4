"""Stateless 2D rotary position embedding, numerically equal to the official PE ``Rope2D``.

Per head of size D, the first D/2 channels rotate with the column (x) position and the last D/2
with the row (y) position; each half uses D/4 frequencies ``10000 ** (-2i / (D/2))``, repeated
for adjacent channel pairs ``(x0, x1), (x2, x3), ...``. Angles are computed and applied in float32.

Tables are pure functions of their arguments and cached by key; nothing is mutated in forward.
"""

from __future__ import annotations

import functools

import torch

__all__ = ["rope_table", "apply_rope"]


@functools.lru_cache(maxsize=64)
def rope_table(
    grid_h: int,
    grid_w: int,
    head_dim: int,
    device: torch.device,
    offset: float = 0.0,
    scale_h: float = 1.0,
    scale_w: float = 1.0,
    cls_token: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and sin tables for a row-major ``grid_h x grid_w`` token grid.

    Position of row i is ``i * scale_h + offset`` (columns alike). The official feature model uses
    integer positions (scales 1) with ``offset=1`` when a cls token is present; the official
    detection backbone interpolates positions in global blocks (``scale = pretrain_grid / grid``).
    With ``cls_token`` a zero angle (identity rotation) is prepended for token 0.

    Returns ``(cos, sin)``, each ``(T, head_dim)`` float32 with ``T = grid_h * grid_w (+1)``.
    """
    if head_dim % 4:
        raise ValueError(f"2D RoPE needs a head dim divisible by 4, got {head_dim}")
    # Cached tensors must be ordinary tensors even when first built under inference_mode.
    with torch.inference_mode(False), torch.no_grad():
        axis_dim = head_dim // 2
        inv_freq = 1.0 / (10000 ** (torch.arange(0, axis_dim, 2, device=device).float() / axis_dim))
        pos_y = torch.arange(grid_h, device=device, dtype=torch.float32) * scale_h + offset
        pos_x = torch.arange(grid_w, device=device, dtype=torch.float32) * scale_w + offset
        ang_y = (pos_y[:, None] * inv_freq).repeat_interleave(2, dim=-1)  # (gh, D/2)
        ang_x = (pos_x[:, None] * inv_freq).repeat_interleave(2, dim=-1)  # (gw, D/2)
        angles = torch.cat(
            [ang_x[None, :, :].expand(grid_h, -1, -1), ang_y[:, None, :].expand(-1, grid_w, -1)],
            dim=-1,
        ).reshape(grid_h * grid_w, head_dim)
        if cls_token:
            angles = torch.cat([angles.new_zeros(1, head_dim), angles], dim=0)
        return angles.cos(), angles.sin()


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate adjacent channel pairs of ``x`` (B, H, T, D) by the table angles (T, D).

    Computed in float32 (autocast or not) and cast back to ``x.dtype``.
    """
    xf = x.float()
    rotated = torch.stack((-xf[..., 1::2], xf[..., 0::2]), dim=-1).flatten(-2)
    return (xf * cos + rotated * sin).to(x.dtype)
