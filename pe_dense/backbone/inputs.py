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


def normalize(images: torch.Tensor, sizes: Sequence[tuple[int, int]] | None = None
              ) -> torch.Tensor:
    """images: (B, 3, H, W) uint8 RGB -> (B, 3, H, W) float32 in [-1, 1].

    ``sizes``: each image's unpadded (h, w); pixels beyond it become 0 (the mean), so the
    zero-padded uint8 border reads as "no signal" rather than black.
    """
    if images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(f"expected images (B, 3, H, W), got {tuple(images.shape)}")
    if images.dtype != torch.uint8:
        raise TypeError(f"expected uint8 RGB images (the pe_dense input contract), got "
                        f"{images.dtype}; pass the collate's uint8 batch, or for an (H, W, 3) "
                        "array use pe_dense.data.images.to_tensor")
    x = images.float().div_(255.0 * PE_STD).sub_(PE_MEAN / PE_STD)
    if sizes is not None:
        if len(sizes) != x.shape[0]:
            raise ValueError(f"{len(sizes)} sizes for a batch of {x.shape[0]} images")
        for i, (h, w) in enumerate(sizes):
            x[i, :, int(h):] = 0.0
            x[i, :, :, int(w):] = 0.0
    return x
