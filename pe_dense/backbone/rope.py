"""Stateless 2D rotary position embedding, numerically equal to the official PE ``Rope2D``.

Per head of size D, the first D/2 channels rotate with the column (x) position and the last D/2
with the row (y) position; each half uses D/4 frequencies ``10000 ** (-2i / (D/2))``, repeated
for adjacent channel pairs ``(x0, x1), (x2, x3), ...``. Angles are computed and applied in float32.

Rotating the pair ``(x0, x1)`` by angle a is the complex product ``(x0 + i x1) * e^{ia}``, which
is how :func:`apply_rope` computes it: one fused multiply instead of the slice/negate/stack/
multiply/add sequence (about 10x faster on CPU, equal to float32 rounding).

Tables are pure functions of their arguments and cached by key; nothing is mutated in forward.
"""

from __future__ import annotations

import functools

import torch

__all__ = ["rope_table", "apply_rope", "RopeTable"]

RopeTable = torch.Tensor  # (T, head_dim / 2) complex64 rotation factors e^{i angle}


@functools.lru_cache(maxsize=64)
def rope_table(
    grid_h: int,
    grid_w: int,
    head_dim: int,
    device: torch.device,
    offset: float = 0.0,
    scale_h: float | tuple[int, int] = 1.0,
    scale_w: float | tuple[int, int] = 1.0,
    cls_token: bool = False,
) -> RopeTable:
    """Rotation factors for a row-major ``grid_h x grid_w`` token grid.

    Position of row i is ``i * scale_h + offset`` (columns alike). The official feature model uses
    integer positions (scales 1) with ``offset=1`` when a cls token is present; the official
    detection backbone interpolates positions in global blocks (``scale = pretrain_grid / grid``).
    With ``cls_token`` a zero angle (identity rotation) is prepended for token 0. A scale given
    as a ratio ``(num, den)`` of (possibly symbolic) sizes is applied as tensor arithmetic, so
    a traced dynamic-shape graph keeps it a function of the grid.

    Returns ``(T, head_dim / 2)`` complex64 ``e^{i angle}``, one per channel pair, with
    ``T = grid_h * grid_w (+1)``.
    """
    if head_dim % 4:
        raise ValueError(f"2D RoPE needs a head dim divisible by 4, got {head_dim}")
    # Cached tensors must be ordinary tensors even when first built under inference_mode.
    with torch.inference_mode(False), torch.no_grad():
        axis_dim = head_dim // 2
        inv_freq = 1.0 / (10000 ** (torch.arange(0, axis_dim, 2, device=device).float() / axis_dim))
        pos_y = _positions(grid_h, scale_h, offset, device)
        pos_x = _positions(grid_w, scale_w, offset, device)
        ang_y = pos_y[:, None] * inv_freq  # (gh, D/4)
        ang_x = pos_x[:, None] * inv_freq  # (gw, D/4)
        angles = torch.cat(
            [ang_x[None, :, :].expand(grid_h, -1, -1), ang_y[:, None, :].expand(-1, grid_w, -1)],
            dim=-1,
        ).reshape(grid_h * grid_w, head_dim // 2)
        if cls_token:
            angles = torch.cat([angles.new_zeros(1, head_dim // 2), angles], dim=0)
        return torch.complex(angles.cos(), angles.sin())


def _positions(size: int, scale: float | tuple[int, int], offset: float,
               device: torch.device) -> torch.Tensor:
    pos = torch.arange(size, device=device, dtype=torch.float32)
    if isinstance(scale, tuple):
        return pos * scale[0] / scale[1] + offset
    return pos * scale + offset


def apply_rope(x: torch.Tensor, table: RopeTable) -> torch.Tensor:
    """Rotate adjacent channel pairs of ``x`` (..., T, H, D) by the table (T, D/2).

    ``x`` may be a strided view (e.g. q and k of a fused qkv projection, rotated together); the
    token axis is third from the end. Computed in float32 (autocast or not) and cast back to
    ``x.dtype``; returns a new contiguous tensor of the same shape.
    """
    xf = x.float()
    if torch.compiler.is_compiling():  # inductor fuses the real form; it cannot codegen complex
        x0, x1 = xf[..., 0::2], xf[..., 1::2]
        cos, sin = table.real[:, None, :], table.imag[:, None, :]
        return torch.stack((x0 * cos - x1 * sin, x1 * cos + x0 * sin), -1).flatten(-2).to(x.dtype)
    if xf.stride(-1) != 1 or any(s % 2 for s in xf.stride()[:-1]):
        xf = xf.contiguous()
    pairs = torch.view_as_complex(xf.unflatten(-1, (-1, 2)))
    return torch.view_as_real(pairs * table[:, None, :]).flatten(-2).to(x.dtype)
