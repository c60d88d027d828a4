"""PE's input contract: models take uint8 RGB; :func:`normalize` runs once, at model entry.

PE was trained on RGB scaled with mean = std = 0.5 per channel, i.e. ``x / 127.5 - 1`` in
[-1, 1]. Datasets, the demo and the Predictor hand task models ``(B, 3, H, W) uint8`` batches,
zero-padded bottom/right by the collate (:func:`pe_dense.data.collate.pad_images`); the task
model's first step is ``normalize(images, sizes)``, which also sets the padding to 0 (the mean),
as detectron2's ``preprocess_image`` and mmseg's ``SegDataPreProcessor`` do.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

__all__ = ["PE_MEAN", "PE_STD", "normalize"]

PE_MEAN = 0.5
PE_STD = 0.5


def normalize(images: torch.Tensor, sizes: Sequence[tuple[int, int]] | None = None,
              mean: float | Sequence[float] = PE_MEAN, std: float | Sequence[float] = PE_STD
              ) -> torch.Tensor:
    """images: (B, 3, H, W) uint8 RGB -> (B, 3, H, W) float32 ``(x / 255 - mean) / std``
    (PE's default: in [-1, 1]). ``mean`` / ``std``: one value or one per RGB channel, in
    [0, 1] units (a backbone's own: :meth:`pe_dense.backbone.contract.Backbone.normalize`).

    ``sizes``: each image's unpadded (h, w); pixels beyond it become 0 (the mean), so the
    zero-padded uint8 border reads as "no signal" rather than black.
    """
    if images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(f"expected images (B, 3, H, W), got {tuple(images.shape)}")
    if images.dtype != torch.uint8:
        raise TypeError(f"expected uint8 RGB images (the pe_dense input contract), got "
                        f"{images.dtype}; pass the collate's uint8 batch, or for an (H, W, 3) "
                        "array use pe_dense.data.images.to_tensor")
    means, stds = _per_channel(mean), _per_channel(std)
    if len(set(means)) == 1 and len(set(stds)) == 1:  # one value: scalar ops, as PE always had
        x = images.float().div_(255.0 * stds[0]).sub_(means[0] / stds[0])
    else:
        scale = images.new_tensor([255.0 * s for s in stds], dtype=torch.float32)
        shift = images.new_tensor([m / s for m, s in zip(means, stds, strict=True)],
                                  dtype=torch.float32)
        x = images.float().div_(scale[:, None, None]).sub_(shift[:, None, None])
    if sizes is not None:
        if len(sizes) != x.shape[0]:
            raise ValueError(f"{len(sizes)} sizes for a batch of {x.shape[0]} images")
        for i, (h, w) in enumerate(sizes):
            x[i, :, int(h):] = 0.0
            x[i, :, :, int(w):] = 0.0
    return x


def _per_channel(value: float | Sequence[float]) -> tuple[float, float, float]:
    if isinstance(value, (int, float)):
        return (float(value),) * 3
    values = tuple(float(v) for v in value)
    if len(values) != 3:
        raise ValueError(f"normalisation mean / std need 1 or 3 values (RGB), got {values}")
    return values  # type: ignore[return-value]
