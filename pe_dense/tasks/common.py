"""What the dense task models (segmentation, depth) share.

- :class:`DenseModel`: the stage contract on top of ``encode``/``decode``: ``preprocess``
  (uint8 -> [-1, 1], batch-size check), ``forward`` (raw outputs), ``run_padded`` (inference on
  one float crop that may need padding), ``predict`` (per-image results at each image's size)
  and ``predict_images`` (plain arrays in and out, via :func:`predict_on_images`).
- :class:`BackboneFeatures`: a PEViT read at some blocks, optionally frozen.
- :func:`build_module`: an ``nn.Module`` as given or built from ``dict(type=..., ...)``.
- :func:`pad_to_multiple`: pad a float crop bottom/right (slide / resized inference only; whole
  batches are padded once, by the collate).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from pe_dense.backbone.inputs import normalize
from pe_dense.backbone.pe_vit import PEViT
from pe_dense.data.collate import pad_images
from pe_dense.data.images import check_rgb, to_tensor
from pe_dense.necks.pyramid import build_backbone
from pe_dense.utils.modules import freeze as freeze_module

__all__ = ["DenseModel", "BackboneFeatures", "build_module", "pad_to_multiple",
           "sample_sizes", "predict_on_images"]


def build_module(spec: nn.Module | Mapping[str, Any], table: Mapping[str, type], what: str,
                 **defaults: Any) -> nn.Module:
    """An nn.Module as given, or ``table[spec["type"]](**defaults, **rest)`` from a dict."""
    if isinstance(spec, nn.Module):
        return spec
    if not isinstance(spec, Mapping) or "type" not in spec:
        raise ValueError(f"{what} must be a module or a dict with a 'type' in {sorted(table)}, "
                         f"got {spec!r}")
    kwargs = dict(spec)
    kind = kwargs.pop("type")
    if kind not in table:
        raise ValueError(f"unknown {what} type {kind!r}; use one of {sorted(table)}")
    return table[kind](**{**defaults, **kwargs})


def pad_to_multiple(x: torch.Tensor, multiple: int, value: float = 0.0) -> torch.Tensor:
    """Pad (B, C, H, W) bottom/right so H and W are multiples of ``multiple`` (``value`` 0 is
    the mean after :func:`pe_dense.backbone.inputs.normalize`)."""
    h, w = x.shape[-2:]
    ph, pw = -h % multiple, -w % multiple
    return F.pad(x, (0, pw, 0, ph), value=value) if ph or pw else x


def sample_sizes(samples: Sequence[Mapping] | None) -> list[tuple[int, int]] | None:
    """Each sample's unpadded ``size`` (h, w), or None when a sample does not state it."""
    if not samples or any("size" not in s for s in samples):
        return None
    return [tuple(int(v) for v in s["size"]) for s in samples]


class BackboneFeatures(nn.Module):
    """A PEViT read at ``layers`` through ``forward_intermediates``; frozen (eval mode, no
    gradients, see :func:`pe_dense.utils.modules.freeze`) when ``freeze``.

    ``layers`` are normalised by :meth:`PEViT.take_indices` (a bad index raises there).
    ``forward(x)``: (B, 3, H, W) float in [-1, 1] -> list of (B, C, H/p, W/p).
    """

    def __init__(self, backbone: PEViT | Mapping[str, Any], layers: Sequence[int],
                 freeze: bool) -> None:
        super().__init__()
        self.backbone = build_backbone(backbone)
        self.layers = self.backbone.take_indices(list(layers))
        self.frozen = freeze
        if freeze:
            freeze_module(self.backbone)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        if self.frozen:
            with torch.no_grad():
                return self.backbone.forward_intermediates(x, self.layers)
        return self.backbone.forward_intermediates(x, self.layers)


class DenseModel(nn.Module):
    """Stages shared by the dense task models (``preprocess``, ``forward``, ``predict``,
    ``predict_images``). A subclass sets ``size_divisor`` (the multiple its batches must have)
    and defines ``encode(x) -> features``, ``decode(features, image_size) -> (B, C, H, W)`` at
    ``image_size``, ``loss`` and ``image_result``; it overrides ``inference`` and
    ``per_image_inference`` when it resizes, flips or slides at test time."""

    size_divisor: int = 1
    square_size: int = 0  # dense models pad to multiples only (pad_images' square_size)

    def encode(self, x: torch.Tensor) -> Any:
        raise NotImplementedError

    def decode(self, features: Any, image_size: tuple[int, int]) -> torch.Tensor:
        raise NotImplementedError

    def preprocess(self, images: torch.Tensor,
                   sizes: Sequence[tuple[int, int]] | None = None) -> torch.Tensor:
        """images: (B, 3, H, W) uint8 RGB, H and W multiples of ``size_divisor`` (the collate
        pads them) -> (B, 3, H, W) float in [-1, 1], 0 beyond each image's ``sizes``."""
        h, w = images.shape[-2:]
        d = self.size_divisor
        if h % d or w % d:
            raise ValueError(f"batch {h}x{w} is not a multiple of {d} (this model's size "
                             f"divisor); pad it in the collate with size_divisor={d} "
                             f"(pe_dense.data.collate.pad_images), e.g. to {-(-h // d) * d}x"
                             f"{-(-w // d) * d}")
        return normalize(images, sizes)

    def forward(self, images: torch.Tensor,
                sizes: Sequence[tuple[int, int]] | None = None) -> torch.Tensor:
        """(B, 3, H, W) uint8 -> raw outputs ``decode(encode(preprocess(images)))`` at H x W."""
        x = self.preprocess(images, sizes)
        return self.decode(self.encode(x), tuple(x.shape[-2:]))

    def training_outputs(self, images: torch.Tensor, samples: Sequence[Mapping], key: str,
                         collate: str) -> tuple[torch.Tensor, torch.Tensor]:
        """The training forward of ``loss``: (B, 3, H, W) uint8 batch -> (raw outputs at H x W,
        ``samples[i][key]`` stacked on the batch's device). ``collate`` names the function that
        makes such samples, for the error when one lacks ``key``."""
        if not samples or any(key not in s for s in samples):
            raise ValueError(f"{type(self).__name__}.loss needs samples with a {key!r} each "
                             f"({collate} makes them)")
        target = torch.stack([s[key] for s in samples]).to(images.device)
        x = self.preprocess(images, sample_sizes(samples))
        return self.decode(self.encode(x), tuple(x.shape[-2:])), target

    def run_padded(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, 3, h, w) float in [-1, 1] of any size (a crop or resized image) -> outputs
        (B, C, h, w): padded with 0 to ``size_divisor`` for the network, cropped back."""
        h, w = x.shape[-2:]
        xp = pad_to_multiple(x, self.size_divisor)
        return self.decode(self.encode(xp), tuple(xp.shape[-2:]))[..., :h, :w]

    # ----------------------------------------------------------------------- predict hooks

    prediction_key = "pred"  # the entry of predict's results that predict_images returns

    @property
    def per_image_inference(self) -> bool:
        """True when :meth:`inference` resizes, flips or crops, so images run one by one."""
        return False

    def inference(self, x: torch.Tensor) -> torch.Tensor:
        """One unpadded image x: (1, 3, h, w) in [-1, 1] -> outputs (1, C, h, w)."""
        return self.run_padded(x)

    def image_result(self, output: torch.Tensor, sample: Mapping,
                     size: tuple[int, int]) -> dict:
        """One image's outputs (1, C, h, w) and its sample -> its entry in :meth:`predict`."""
        raise NotImplementedError

    # ---------------------------------------------------------------------------- predict

    def outputs_per_image(self, images: torch.Tensor, sizes: Sequence[tuple[int, int]]
                          ) -> list[torch.Tensor]:
        """images: (B, 3, H, W) uint8 batch -> per image outputs (1, C, h, w) at its unpadded
        size: the whole batch in one pass, or image by image (:attr:`per_image_inference`)."""
        x = self.preprocess(images, sizes)
        if self.per_image_inference:
            return [self.inference(x[i: i + 1, :, :h, :w]) for i, (h, w) in enumerate(sizes)]
        out = self.decode(self.encode(x), tuple(x.shape[-2:]))
        return [out[i: i + 1, :, :h, :w] for i, (h, w) in enumerate(sizes)]

    @torch.no_grad()
    def predict(self, images: torch.Tensor, samples: Sequence[dict] | None = None) -> list[dict]:
        """images: (B, 3, H, W) uint8 batch; samples: per image dicts with the unpadded
        ``size`` (h, w) (the whole batch when absent) and optional ground truth / ``path`` ->
        one result dict per image (see the subclass's :meth:`image_result`)."""
        samples = list(samples) if samples else [{} for _ in range(images.shape[0])]
        sizes = sample_sizes(samples) or [tuple(images.shape[-2:])] * images.shape[0]
        outputs = self.outputs_per_image(images, sizes)
        return [self.image_result(out, sample, size)
                for out, sample, size in zip(outputs, samples, sizes, strict=True)]

    def predict_images(self, images: Sequence[np.ndarray]) -> list[np.ndarray]:
        """uint8 (H, W, 3) RGB images -> per image ``predict(...)[prediction_key]`` as numpy,
        at the original size."""
        return predict_on_images(self, images, lambda result: result[self.prediction_key])


@torch.no_grad()
def predict_on_images(model: nn.Module, images: Sequence[np.ndarray],
                      post: Callable[[dict], torch.Tensor]) -> list[np.ndarray]:
    """``post(model.predict(batch, [{"size": (H, W)}])[0])`` as numpy for each uint8 (H, W, 3)
    RGB image, fed as a (1, 3, H', W') uint8 batch padded to ``model.size_divisor`` on the
    model's device; eval mode, the training flag restored afterwards."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    try:
        out = []
        for image in images:
            t = to_tensor(check_rgb(image))
            batch = pad_images([t], size_divisor=model.size_divisor).to(device)
            (result,) = model.predict(batch, [{"size": tuple(t.shape[-2:])}])
            out.append(post(result).cpu().numpy())
        return out
    finally:
        model.train(was_training)
