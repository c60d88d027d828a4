"""What the dense task models (segmentation, depth) share.

- :class:`DenseModel`: the stage contract on top of ``encode``/``decode``: ``preprocess``
  (uint8 -> [-1, 1], batch-size check), ``forward`` (raw outputs), ``run_padded`` (inference on
  one float crop that may need padding), ``slide`` (mmseg's "slide" mode: overlapping windows,
  outputs averaged), ``predict`` (per-image results at each image's size) and
  ``predict_images`` (plain arrays in and out, via :func:`predict_on_images`).
- :func:`slide_predict`: raw outputs of a dense model on a uint8 image of any size, window by
  window, with one full-size accumulator (large images).
- :func:`window_grid` / :func:`overlap_stride`: the overlapping windows that cover an image
  (also the tiles of sliced detection, :mod:`pe_dense.tasks.detection.sliced`).
- :class:`BackboneFeatures`: a backbone read at some blocks, optionally frozen.
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

from pe_dense.backbone.contract import Backbone
from pe_dense.backbone.factory import build_backbone
from pe_dense.data.collate import pad_images
from pe_dense.data.images import check_rgb, to_tensor
from pe_dense.utils.modules import freeze as freeze_module

__all__ = ["DenseModel", "BackboneFeatures", "build_module", "pad_to_multiple",
           "sample_sizes", "predict_on_images", "slide_predict", "window_grid",
           "overlap_stride", "check_inference_cfg"]

Window = tuple[int, int, int, int]  # x0, y0, x1, y1 in pixels, end exclusive


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
    the mean after the backbone's ``normalize``)."""
    h, w = x.shape[-2:]
    ph, pw = -h % multiple, -w % multiple
    return F.pad(x, (0, pw, 0, ph), value=value) if ph or pw else x


def overlap_stride(crop: int, overlap: float) -> int:
    """The step between windows of ``crop`` pixels that overlap by the fraction ``overlap`` in
    [0, 1): ``crop - round(crop * overlap)`` (512 and 1/3 -> 341, mmseg's default)."""
    if crop < 1:
        raise ValueError(f"crop / slice size must be a positive number of pixels, got {crop}")
    if not 0.0 <= overlap < 1.0:
        raise ValueError(f"overlap must be a fraction in [0, 1), got {overlap}; e.g. 0.2 for "
                         "tiles that share a fifth of their width")
    return max(1, crop - round(crop * overlap))


def window_grid(size: tuple[int, int], crop: tuple[int, int],
                stride: tuple[int, int]) -> list[Window]:
    """Windows (x0, y0, x1, y1) covering an image of ``size`` (h, w), row by row: ``crop``
    (ch, cw) pixels each (clipped to the image when it is smaller), starting every ``stride``
    (sh, sw); the last row and column are shifted inward so that they end at the image border
    (mmseg's "slide" grid). Every pixel is covered; neighbours overlap by at least
    ``crop - stride``."""
    (h, w), (ch, cw), (sh, sw) = size, crop, stride
    if min(h, w, ch, cw, sh, sw) < 1:
        raise ValueError(f"window_grid needs positive sizes, got size={size} crop={crop} "
                         f"stride={stride}")
    ys = _starts(h, ch, sh)
    xs = _starts(w, cw, sw)
    return [(x0, y0, x1, y1) for y0, y1 in ys for x0, x1 in xs]


def _starts(n: int, crop: int, stride: int) -> list[tuple[int, int]]:
    """(start, end) of the windows along one axis of ``n`` pixels."""
    count = max(n - crop + stride - 1, 0) // stride + 1
    out = []
    for i in range(count):
        end = min(i * stride + crop, n)
        out.append((max(end - crop, 0), end))
    return out


def check_inference_cfg(inference: Mapping[str, Any] | None) -> dict[str, Any]:
    """A dense model's ``inference`` option, checked: ``dict(mode="whole")`` (default) or
    ``dict(mode="slide", crop_size=(h, w), stride=(h, w), batch_size=1)`` (crop 512 and
    stride 341 when absent; ``batch_size`` windows per forward)."""
    cfg = dict(inference or {"mode": "whole"})
    mode = cfg.get("mode", "whole")
    if mode not in ("whole", "slide"):
        raise ValueError(f"inference mode {mode!r}: use whole/slide")
    unknown = set(cfg) - {"mode", "crop_size", "stride", "batch_size"}
    if unknown:
        raise ValueError(f"unknown inference option(s) {sorted(unknown)}; use mode, crop_size, "
                         "stride, batch_size")
    return cfg


def sample_sizes(samples: Sequence[Mapping] | None) -> list[tuple[int, int]] | None:
    """Each sample's unpadded ``size`` (h, w), or None when a sample does not state it."""
    if not samples or any("size" not in s for s in samples):
        return None
    return [tuple(int(v) for v in s["size"]) for s in samples]


class BackboneFeatures(nn.Module):
    """A backbone read at blocks ``indices`` through ``forward_intermediates``; frozen (eval
    mode, no gradients, see :func:`pe_dense.utils.modules.freeze`) when ``freeze``.

    ``indices`` are normalised by the backbone's ``take_indices`` (a bad index raises there);
    ``self.indices`` holds them (``self.layers``: the same list, the older name).
    ``forward(x)``: (B, 3, H, W) float in [-1, 1] -> list of (B, C, H/p, W/p).
    """

    def __init__(self, backbone: Backbone | Mapping[str, Any], indices: Sequence[int],
                 freeze: bool) -> None:
        super().__init__()
        self.backbone = build_backbone(backbone)
        self.indices = self.backbone.take_indices(list(indices))
        self.layers = self.indices
        self.frozen = freeze
        if freeze:
            freeze_module(self.backbone)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        if self.frozen:
            with torch.no_grad():
                return self.backbone.forward_intermediates(x, self.indices)
        return self.backbone.forward_intermediates(x, self.indices)


class DenseModel(nn.Module):
    """Stages shared by the dense task models (``preprocess``, ``forward``, ``predict``,
    ``predict_images``). A subclass sets ``size_divisor`` (the multiple its batches must have)
    and defines ``encode(x) -> features``, ``decode(features, image_size) -> (B, C, H, W)`` at
    ``image_size``, ``loss`` and ``image_result``; it overrides ``inference`` and
    ``per_image_inference`` when it resizes, flips or slides at test time, and
    ``window_inference`` when each window (or the whole image) gets more than one pass (flips).
    ``inference_cfg`` (:func:`check_inference_cfg`) selects whole or slide inference."""

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
        return self.backbone.normalize(images, sizes)

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

    def window_inference(self, x: torch.Tensor) -> torch.Tensor:
        """One window or image x: (B, 3, h, w) float in [-1, 1] of any size -> outputs
        (B, C, h, w); :meth:`run_padded` unless the model adds test-time flips."""
        return self.run_padded(x)

    @property
    def slides(self) -> bool:
        """True when ``inference_cfg`` asks for sliding-window inference."""
        cfg = getattr(self, "inference_cfg", None) or {}
        return cfg.get("mode", "whole") == "slide"

    def slide(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, 3, h, w) float in [-1, 1] -> outputs (B, C, h, w): :meth:`window_inference`
        on the overlapping windows of ``inference_cfg`` (``crop_size``, ``stride``; windows
        clipped to smaller images; ``batch_size`` windows per forward, default 1), each pixel
        the mean over the windows that cover it. The sum is kept in one (B, C, h, w) tensor on
        x's device; the counts are the product of a row and a column vector (the grid is
        regular), so no count map is stored."""
        cfg = getattr(self, "inference_cfg", None) or {}
        crop = tuple(cfg.get("crop_size", (512, 512)))
        stride = tuple(cfg.get("stride", (341, 341)))
        windows = window_grid(tuple(x.shape[-2:]), crop, stride)

        def fetch(group: Sequence[Window]) -> torch.Tensor:
            return torch.cat([x[..., y0:y1, x0:x1] for x0, y0, x1, y1 in group])

        return _average_windows(windows, tuple(x.shape[-2:]), x.shape[0], fetch,
                                self.window_inference, int(cfg.get("batch_size", 1)), x.device)

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


def _average_windows(windows: Sequence[Window], size: tuple[int, int], batch: int,
                     fetch: Callable[[Sequence[Window]], torch.Tensor],
                     infer: Callable[[torch.Tensor], torch.Tensor], batch_size: int,
                     device: torch.device | str) -> torch.Tensor:
    """Mean of ``infer(fetch(group))`` over the windows covering each pixel -> (batch, C, h,
    w) on ``device``. ``windows`` come from :func:`window_grid` (a grid: every row band meets
    every column band once); ``fetch`` stacks the windows of a group (each (batch, 3, wh, ww))
    along the batch; ``infer`` maps that to (len(group) * batch, C, wh, ww)."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1 window, got {batch_size}")
    h, w = size
    acc = None
    for s in range(0, len(windows), batch_size):
        group = windows[s:s + batch_size]
        out = infer(fetch(group)).to(device)
        if acc is None:
            acc = out.new_zeros(batch, out.shape[1], h, w)
        for k, (x0, y0, x1, y1) in enumerate(group):
            acc[..., y0:y1, x0:x1] += out[k * batch:(k + 1) * batch]
    # The windows form a grid: the count at (y, x) is (row bands over y) * (column bands
    # over x), so two vectors replace a count map; divided a band of rows at a time.
    rows, cols = acc.new_zeros(h), acc.new_zeros(w)
    for y0, y1 in sorted({(y0, y1) for _, y0, _, y1 in windows}):
        rows[y0:y1] += 1
    for x0, x1 in sorted({(x0, x1) for x0, _, x1, _ in windows}):
        cols[x0:x1] += 1
    for r in range(0, h, 256):
        acc[..., r:r + 256, :].div_(rows[r:r + 256, None] * cols[None, :])
    return acc

@torch.no_grad()
def slide_predict(model: DenseModel, image: np.ndarray, crop: int, overlap: float = 1 / 3,
                  batch_size: int = 4, accumulate_on: torch.device | str = "cpu"
                  ) -> torch.Tensor:
    """Raw outputs of a dense model (segmentation logits, depth in metres) on a uint8 (H, W,
    3) RGB image of any size -> (1, C, H, W) float32 on ``accumulate_on``.

    The image is cut into ``crop`` x ``crop`` windows overlapping by the fraction ``overlap``
    (:func:`window_grid`; 1/3 of 512 gives mmseg's stride 341), which run ``batch_size`` at a
    time through ``model.window_inference`` on the model's device (normalised window by
    window: the whole image is never converted to float); each pixel is the mean of the
    windows covering it. When ``crop`` covers the image this is whole-image inference. Memory
    beyond the uint8 image: one (C, H, W) float32 accumulator (4 C H W bytes: 48 MB per channel
    at 4000 x 3000) and ``batch_size`` windows; the overlap counts are a row and a column
    vector. The image is run at its own resolution: resize it first (as the model's
    ``test_scale`` / ``input_scale`` would) when the model expects another scale. Choose
    ``crop`` as a multiple of ``model.size_divisor`` (the training crop), or windows are padded.
    Eval mode; the training flag is restored."""
    image = check_rgb(image)
    h, w = image.shape[:2]
    windows = window_grid((h, w), (crop, crop), (overlap_stride(crop, overlap),) * 2)
    device = next(model.parameters()).device
    source = torch.from_numpy(image) if image.flags.writeable else torch.from_numpy(image.copy())

    def fetch(group: Sequence[Window]) -> torch.Tensor:
        crops = torch.stack([source[y0:y1, x0:x1] for x0, y0, x1, y1 in group])
        return model.backbone.normalize(crops.to(device).permute(0, 3, 1, 2))

    was_training = model.training
    model.eval()
    try:
        return _average_windows(windows, (h, w), 1, fetch, model.window_inference, batch_size,
                                accumulate_on)
    finally:
        model.train(was_training)
