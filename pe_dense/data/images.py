"""The one RGB image reader and the (H, W, 3) -> (3, H, W) uint8 conversion.

Every path that reads a picture (datasets, the Predictor, the demo, ``pe-dense features``,
the tracker's frames, distillation) goes through :func:`read_rgb`; models take the uint8
tensors :func:`to_tensor` makes (see :mod:`pe_dense.backbone.inputs`).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

__all__ = ["read_rgb", "to_tensor", "check_rgb"]


def read_rgb(path: str | os.PathLike) -> np.ndarray:
    """An image file -> (H, W, 3) uint8 RGB (a writable array; grey, palette and RGBA files
    are converted, alpha dropped).

    Raises ``FileNotFoundError`` when ``path`` does not exist and ``ValueError`` when it is not
    an image PIL can decode.
    """
    from PIL import Image

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"image {path} does not exist; check the path")
    try:
        with Image.open(path) as im:
            return np.array(im.convert("RGB"))
    except OSError as exc:  # PIL.UnidentifiedImageError and truncated files are OSErrors
        raise ValueError(f"cannot read image {path} ({exc}); replace or remove the file") from exc


def check_rgb(image: np.ndarray) -> np.ndarray:
    """``image`` itself if it is an (H, W, 3) uint8 RGB array, else a ``ValueError``."""
    if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] != 3 \
            or image.dtype != np.uint8:
        shape = getattr(image, "shape", None)
        raise ValueError(f"expected an (H, W, 3) uint8 RGB array, got {type(image).__name__} "
                         f"{shape} {getattr(image, 'dtype', '')}; read files with read_rgb")
    return image


def to_tensor(image: np.ndarray | torch.Tensor) -> torch.Tensor:
    """(H, W, 3) uint8 RGB array or tensor -> (3, H, W) uint8 tensor (no scaling; the model's
    ``preprocess`` normalises)."""
    if isinstance(image, np.ndarray):
        writable = image.flags.writeable and image.flags.c_contiguous
        image = torch.from_numpy(image if writable else np.array(image))
    t = image
    if not isinstance(t, torch.Tensor) or t.ndim != 3 or t.shape[-1] != 3 \
            or t.dtype != torch.uint8:
        raise ValueError(f"expected an (H, W, 3) uint8 RGB image, got "
                         f"{tuple(getattr(t, 'shape', ()))} {getattr(t, 'dtype', type(t))}")
    return t.permute(2, 0, 1).contiguous()
