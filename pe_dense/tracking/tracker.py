"""Online video object tracker on PE features (label propagation), one or several layers.

Usage (the API the webcam demo and users' own loops rely on)::

    from pe_dense import create_backbone
    from pe_dense.tracking import Tracker

    model = create_backbone("PE-Spatial-B16-512", weights="PE-Spatial-B16-512.pt").eval()
    tracker = Tracker(model, layer=-1, short_side=480)
    tracker.reset(first_frame, masks)      # (H, W, 3) uint8 RGB; (H, W) ids or (N, H, W) bool
    for frame in frames:
        labels = tracker.update(frame)     # (H, W) uint8: 0 background, 1..N objects
        # an object that appears later: tracker.update(frame, masks=new_masks)

``masks`` is either an (H, W) integer map of object ids (0 background, ids 1..254, any number of
objects, gaps allowed) or an (N, H, W) boolean stack (object i gets id i + 1). A mask passed to
``update`` overrides the prediction where it is non-zero and becomes a permanent reference frame,
which is how objects that appear later are added. Memory and time per frame are bounded: each
frame's features are computed once (one backbone pass), and the context is the reference frames
plus the last ``n_last_frames`` predictions. Defaults are the standard DAVIS protocol: 7 previous
frames + the first, top-5 jointly over the context, 12-patch neighbourhood, temperature 0.1.
Frames are resized to ``short_side`` with both sides rounded to the nearest multiple of the patch
(DAVIS 480x854 -> 480x848 for patch 16, 476x854 for patch 14), so the upsampled patch grid covers
the input exactly; DINO's script floors the long side to a multiple of 64 instead (832).

``LayerSweepTracker`` runs the same propagation for several layers from ONE backbone pass per
frame (``forward_intermediates``) and returns ``{layer: labels}``; ``Tracker`` is its one-layer
case.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from pe_dense.data.images import to_tensor
from pe_dense.data.transforms import resize_to_multiple
from pe_dense.tracking.propagation import downsample_labels, labels_from_soft, one_hot, propagate

__all__ = ["Tracker", "LayerSweepTracker", "PropagationState", "masks_to_labels", "MAX_OBJECT_ID"]

log = logging.getLogger(__name__)

MAX_OBJECT_ID = 254  # palette PNGs hold 0..255 and DAVIS reads 255 as "void"


def masks_to_labels(masks: np.ndarray | torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """(H, W) integer ids or (N, H, W) bool/0-1 masks -> (H, W) long ids, checked against ``size``
    (the frame's (H, W))."""
    m = torch.as_tensor(np.asarray(masks)) if not isinstance(masks, torch.Tensor) else masks.cpu()
    if m.ndim == 3:
        if m.dtype != torch.bool and not ((m == 0) | (m == 1)).all():
            raise ValueError("an (N, H, W) mask stack must be boolean or 0/1; pass an (H, W) map "
                             "of object ids for labelled masks")
        ids = torch.zeros(m.shape[1:], dtype=torch.long)
        for i in range(m.shape[0]):
            ids[m[i].bool()] = i + 1
        m = ids
    if m.ndim != 2:
        raise ValueError(f"masks must be (H, W) object ids or (N, H, W) booleans, got "
                         f"{tuple(m.shape)}")
    if m.is_floating_point() and not (m == m.round()).all():
        raise ValueError("mask ids must be integers")
    m = m.long()
    if tuple(m.shape) != tuple(size):
        raise ValueError(f"mask is {m.shape[1]}x{m.shape[0]} (WxH) but the frame is "
                         f"{size[1]}x{size[0]}: masks must have the frame's size")
    if m.numel() and (m.min() < 0 or m.max() > MAX_OBJECT_ID):
        raise ValueError(f"object ids must be in 0..{MAX_OBJECT_ID} (0 = background), got "
                         f"{int(m.min())}..{int(m.max())}")
    return m


@dataclass
class _Entry:
    feats: torch.Tensor   # (h*w, C) L2-normalised
    labels: torch.Tensor  # (K, h*w) soft labels


class PropagationState:
    """Context of one feature layer: reference frames (the first and any frame given masks)
    plus a queue of the last ``n_last_frames`` predicted frames. Works on patch grids only."""

    def __init__(self, n_last_frames: int = 7, topk: int = 5, radius: int = 12,
                 temperature: float = 0.1) -> None:
        if n_last_frames < 0 or topk < 1 or temperature <= 0:
            raise ValueError(f"need n_last_frames >= 0, topk >= 1, temperature > 0; got "
                             f"{n_last_frames}, {topk}, {temperature}")
        self.topk, self.radius, self.temperature = topk, radius, temperature
        self.references: list[_Entry] = []
        self.queue: deque[_Entry] = deque(maxlen=n_last_frames)
        self.num_channels = 0

    def reset(self, feats: torch.Tensor, labels: torch.Tensor) -> None:
        """feats: (C, h, w); labels: (h, w) long ids. Starts a new video."""
        self.references.clear()
        self.queue.clear()
        self.num_channels = int(labels.max()) + 1
        self.references.append(_Entry(_normalise(feats), one_hot(labels, self.num_channels)))

    def step(self, feats: torch.Tensor, prompt: torch.Tensor | None = None) -> torch.Tensor:
        """feats: (C, h, w) of the new frame; prompt: optional (h, w) ids that override the
        prediction where non-zero (and make this frame a reference). Returns (K, h*w)."""
        if not self.references:
            raise RuntimeError("call reset(first_frame, masks) before update(frame)")
        grid = tuple(feats.shape[-2:])
        query = _normalise(feats)
        context = self.references + list(self.queue)
        keys = torch.stack([e.feats for e in context])
        if keys.shape[1:] != query.shape:
            raise ValueError(f"frame features {tuple(query.shape)} differ from the first frame's "
                             f"{tuple(keys.shape[1:])}: all frames must have the same size")
        labels = torch.stack([_pad(e.labels, self.num_channels) for e in context])
        soft = propagate(query, keys, labels, grid, topk=self.topk,
                         temperature=self.temperature, radius=self.radius)
        if prompt is not None and bool((prompt > 0).any()):
            self.num_channels = max(self.num_channels, int(prompt.max()) + 1)
            soft = _pad(soft, self.num_channels)
            given = prompt.flatten() > 0
            soft[:, given] = one_hot(prompt, self.num_channels)[:, given]
            self.references.append(_Entry(query, soft))
        self.queue.append(_Entry(query, soft))
        return soft


class LayerSweepTracker:
    """Label-propagation tracker on several layers of one PE backbone, one pass per frame.

    model: any backbone (a PE variant, ``timm/...``; its device is used). layers: 0-based
    block indices (negatives from the end). short_side: frames are resized so the short side is
    about this many pixels and both sides are multiples of the patch size. ``norm`` applies
    ``ln_post`` (Identity for Spatial models). Other options are the propagation settings (see
    module docstring).
    """

    def __init__(self, model: torch.nn.Module, layers: Sequence[int] = (-1,),
                 short_side: int = 480, n_last_frames: int = 7, topk: int = 5,
                 neighborhood: int = 12, temperature: float = 0.1, norm: bool = False) -> None:
        if short_side < model.patch_size:
            raise ValueError(f"short_side {short_side} is smaller than the patch size "
                             f"{model.patch_size}")
        self.model = model
        self.layers = [int(i) for i in layers]
        if not self.layers:
            raise ValueError("give at least one layer")
        bad = [i for i in self.layers if not -model.num_layers <= i < model.num_layers]
        if bad:
            raise ValueError(f"layers {bad} are out of range for a {model.num_layers}-block model: "
                             f"use 0..{model.num_layers - 1} or -{model.num_layers}..-1")
        self.short_side, self.norm = short_side, norm
        self.states = {i: PropagationState(n_last_frames, topk, neighborhood, temperature)
                       for i in self.layers}
        self.frame_size: tuple[int, int] | None = None
        self.num_frames = 0

    @property
    def patch_size(self) -> int:
        return self.model.patch_size

    @torch.inference_mode()
    def features(self, frame: np.ndarray) -> list[torch.Tensor]:
        """(H, W, 3) uint8 RGB -> one (C, h, w) float map per layer, from one backbone pass."""
        x = self.model.normalize(to_tensor(frame)[None])  # (1, 3, H, W), its normalisation
        x = resize_to_multiple(x, self.short_side, self.patch_size)
        param = next(self.model.parameters())
        x = x.to(device=param.device, dtype=param.dtype)
        maps = self.model.forward_intermediates(x, indices=self.layers, norm=self.norm)
        return [m[0].float() for m in maps]

    def reset(self, first_frame: np.ndarray, masks: np.ndarray | torch.Tensor
              ) -> dict[int, np.ndarray]:
        """Start a video. first_frame: (H, W, 3) uint8 RGB; masks: (H, W) ids or (N, H, W)
        booleans. Returns ``{layer: (H, W) uint8 labels}`` (the given masks)."""
        size = _frame_size(first_frame)
        labels = masks_to_labels(masks, size)
        if not (labels > 0).any():
            log.warning("the first-frame masks are empty: nothing to track until masks are given")
        feats = self.features(first_frame)
        grid = tuple(feats[0].shape[-2:])
        small = downsample_labels(labels, grid).to(feats[0].device)
        for layer, f in zip(self.layers, feats, strict=True):
            self.states[layer].reset(f, small)
        self.frame_size, self.num_frames = size, 1
        out = labels.numpy().astype(np.uint8)
        return {layer: out for layer in self.layers}

    @torch.inference_mode()
    def update(self, frame: np.ndarray, masks: np.ndarray | torch.Tensor | None = None
               ) -> dict[int, np.ndarray]:
        """Track into the next frame: (H, W, 3) uint8 RGB -> ``{layer: (H, W) uint8 labels}``.
        ``masks`` (optional, same forms as in ``reset``) add or correct objects on this frame."""
        if self.frame_size is None:
            raise RuntimeError("call reset(first_frame, masks) before update(frame)")
        size = _frame_size(frame)
        if size != self.frame_size:
            raise ValueError(f"frame is {size[1]}x{size[0]} but the video started at "
                             f"{self.frame_size[1]}x{self.frame_size[0]}; call reset() for a new "
                             "video")
        given = masks_to_labels(masks, size) if masks is not None else None
        feats = self.features(frame)
        grid = tuple(feats[0].shape[-2:])
        prompt = None
        if given is not None:
            prompt = downsample_labels(given, grid).to(feats[0].device)
        out = {}
        for layer, f in zip(self.layers, feats, strict=True):
            soft = self.states[layer].step(f, prompt)
            hard = labels_from_soft(soft, grid, self.patch_size, size).cpu()
            if given is not None:
                hard = torch.where(given > 0, given, hard)
            out[layer] = hard.numpy().astype(np.uint8)
        self.num_frames += 1
        return out


class Tracker:
    """Online label-propagation tracker on one layer: ``reset(first_frame, masks)`` then
    ``update(frame) -> masks`` ((H, W) uint8 ids). See the module docstring."""

    def __init__(self, model: torch.nn.Module, layer: int = -1, short_side: int = 480,
                 n_last_frames: int = 7, topk: int = 5, neighborhood: int = 12,
                 temperature: float = 0.1, norm: bool = False) -> None:
        self.layer = layer
        self._sweep = LayerSweepTracker(model, [layer], short_side, n_last_frames, topk,
                                        neighborhood, temperature, norm)

    @property
    def num_frames(self) -> int:
        """Frames seen since the last ``reset`` (the first frame included)."""
        return self._sweep.num_frames

    @property
    def num_objects(self) -> int:
        """Highest object id tracked so far (ids may have gaps)."""
        return max(0, self._sweep.states[self.layer].num_channels - 1)

    def reset(self, first_frame: np.ndarray, masks: np.ndarray | torch.Tensor) -> np.ndarray:
        """Start a video: (H, W, 3) uint8 RGB frame and its masks ((H, W) ids or (N, H, W)
        booleans). Returns the (H, W) uint8 id map of the given masks."""
        return self._sweep.reset(first_frame, masks)[self.layer]

    def update(self, frame: np.ndarray, masks: np.ndarray | torch.Tensor | None = None
               ) -> np.ndarray:
        """Next frame (H, W, 3) uint8 RGB -> (H, W) uint8 object ids (0 background). Optional
        ``masks`` add objects that appear on this frame (or correct existing ones)."""
        return self._sweep.update(frame, masks)[self.layer]


def _normalise(feats: torch.Tensor) -> torch.Tensor:
    """(C, h, w) -> (h*w, C) L2-normalised along C."""
    return F.normalize(feats.flatten(1).t().float(), dim=1)


def _pad(labels: torch.Tensor, channels: int) -> torch.Tensor:
    """(K, N) -> (channels, N) with zero rows for objects added after this frame."""
    if labels.shape[0] >= channels:
        return labels
    return F.pad(labels, (0, 0, 0, channels - labels.shape[0]))


def _frame_size(frame: np.ndarray) -> tuple[int, int]:
    if not isinstance(frame, np.ndarray) or frame.ndim != 3 or frame.shape[2] != 3 \
            or frame.dtype != np.uint8:
        desc = (f"{frame.shape} {frame.dtype}" if isinstance(frame, np.ndarray)
                else type(frame).__name__)
        raise ValueError(f"frames must be (H, W, 3) uint8 RGB numpy arrays, got {desc}")
    return frame.shape[0], frame.shape[1]
