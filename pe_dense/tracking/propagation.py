"""Label propagation by feature affinity: the maths of the tracker, free of any model or state.

The algorithm is the standard training-free video object segmentation protocol used to score
self-supervised features on DAVIS (DINO's label propagation, also used for PE-Spatial):

* every patch of the new frame looks at the patches of a context of frames (the first frame plus
  the last ``n`` predicted frames), restricted to a square neighbourhood of ``radius`` patches
  around its own position;
* affinities are cosine similarities of L2-normalised features; the ``topk`` best keys are kept
  jointly over the whole context, weighted by ``softmax(similarity / temperature)``
  (identical to ``exp(s / T)`` normalised to sum 1 over the kept keys);
* the new frame's soft labels are the weighted sum of the keys' soft labels.

Shapes: ``h, w`` is the patch grid, ``K`` the number of label channels (background + objects).
"""

from __future__ import annotations

from functools import lru_cache

import torch
import torch.nn.functional as F

__all__ = [
    "neighborhood_mask", "propagate", "downsample_labels", "one_hot", "labels_from_soft",
]


@lru_cache(maxsize=8)
def _neighborhood_mask(h: int, w: int, radius: int, device: str) -> torch.Tensor:
    ys, xs = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    ys, xs = ys.flatten(), xs.flatten()
    near_y = (ys[:, None] - ys[None, :]).abs() <= radius
    near_x = (xs[:, None] - xs[None, :]).abs() <= radius
    return (near_y & near_x).to(device)


def neighborhood_mask(h: int, w: int, radius: int,
                      device: torch.device | str = "cpu") -> torch.Tensor:
    """(h*w, h*w) bool: ``[q, k]`` is True when key patch k lies within ``radius`` patches of
    query patch q in both axes (a square window). Cached per (h, w, radius, device)."""
    return _neighborhood_mask(h, w, radius, str(torch.device(device)))


def propagate(
    query: torch.Tensor,
    keys: torch.Tensor,
    labels: torch.Tensor,
    grid: tuple[int, int],
    topk: int = 5,
    temperature: float = 0.1,
    radius: int = 12,
) -> torch.Tensor:
    """Soft labels of a new frame from a context of labelled frames.

    query: (h*w, C) L2-normalised features of the new frame.
    keys: (n, h*w, C) L2-normalised features of the n context frames.
    labels: (n, K, h*w) soft labels of the context frames.
    grid: (h, w). ``radius`` <= 0 disables the spatial restriction.
    Returns (K, h*w) soft labels (each column sums to the weights' sum, 1 for one-hot inputs).
    """
    n, hw, _ = keys.shape
    if query.shape[0] != hw or labels.shape[0] != n or labels.shape[-1] != hw:
        raise ValueError(f"query {tuple(query.shape)}, keys {tuple(keys.shape)} and labels "
                         f"{tuple(labels.shape)} do not describe the same (n, h*w) grid")
    sim = torch.einsum("qc,nkc->qnk", query, keys)  # (hw_q, n, hw_k)
    if radius > 0:
        near = neighborhood_mask(grid[0], grid[1], radius, query.device)
        sim.masked_fill_(~near[:, None, :], float("-inf"))
    sim = sim.reshape(hw, n * hw)
    k = min(topk, n * hw)
    values, index = sim.topk(k, dim=1)  # (hw_q, k), jointly over all context frames
    weights = torch.softmax(values / temperature, dim=1)
    flat = labels.permute(0, 2, 1).reshape(n * hw, -1)  # (n*hw_k, K)
    return torch.einsum("qk,qkc->cq", weights, flat[index])


def downsample_labels(labels: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
    """(H, W) integer labels -> (h, w) by nearest sampling at cell centres (as PIL NEAREST)."""
    if labels.ndim != 2:
        raise ValueError(f"expected an (H, W) label map, got {tuple(labels.shape)}")
    out = F.interpolate(labels[None, None].float(), size=grid, mode="nearest-exact")
    return out[0, 0].round().long()


def one_hot(labels: torch.Tensor, num_channels: int) -> torch.Tensor:
    """(h, w) integer labels in [0, num_channels) -> (num_channels, h*w) float one-hot."""
    return F.one_hot(labels.flatten(), num_channels).t().float()


def labels_from_soft(soft: torch.Tensor, grid: tuple[int, int], patch_size: int,
                     out_size: tuple[int, int]) -> torch.Tensor:
    """(K, h*w) soft labels -> (H, W) long hard labels.

    Bilinear upsampling by ``patch_size`` (align_corners=False), per-channel min-max
    normalisation of channels with a positive maximum, argmax, then nearest resize to
    ``out_size`` (the original frame size), as in the standard protocol.
    """
    k = soft.shape[0]
    up = F.interpolate(soft.reshape(1, k, *grid), scale_factor=patch_size, mode="bilinear",
                       align_corners=False)[0]
    flat = up.flatten(1)
    low, high = flat.min(1).values, flat.max(1).values
    span = high - low
    scaled = torch.where(span[:, None] > 0, (flat - low[:, None]) / span.clamp_min(1e-12)[:, None],
                         torch.ones_like(flat))
    flat = torch.where(high[:, None] > 0, scaled, flat)
    hard = flat.argmax(0).reshape(up.shape[1:])
    if tuple(hard.shape) != tuple(out_size):
        hard = F.interpolate(hard[None, None].float(), size=out_size, mode="nearest-exact")[0, 0]
    return hard.long()
