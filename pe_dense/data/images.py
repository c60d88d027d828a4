"""The one image reader, its limits, and fitting images to a model's input contract.

Every path that reads a picture (datasets, the Predictor, the demo, ``pe-dense features``,
the tracker's frames, distillation) goes through :func:`read_rgb`; label maps, depth maps and
masks open their files with :func:`open_checked`, so every reader refuses the same bad files
with the same one-line :class:`BadImageError`:

- a folder, a missing file (:class:`MissingImageError`, also a ``FileNotFoundError``), a file
  that is not an image, a truncated or corrupt one;
- a decompression bomb: more than :attr:`ImageLimits.max_pixels` pixels, judged from the
  header before anything is decoded, so memory stays bounded (PIL's own
  ``DecompressionBombError`` becomes the same error);
- an absurd shape: long side / short side over :attr:`ImageLimits.max_aspect` (a 4000 x 3 strip),
  or a zero-size image.

Limits are per call (``read_rgb(path, limits=ImageLimits(max_pixels=4e8))``); the defaults are
:data:`DEFAULT_LIMITS`. Formats: 16-bit images (PNG modes ``I;16*``, ``I``) are scaled to 8 bit
(value / 257, so 0..65535 -> 0..255, not clipped) with a warning; float images (``F``) in
[0, 1] are scaled by 255, others stretched min..max; EXIF orientation is applied; CMYK, YCbCr,
grey and 1-bit images are converted; alpha (``LA``, ``RGBA``, palette transparency) is dropped,
keeping the stored colours (not composited over a background), as ``PIL.Image.convert("RGB")``
does. Multi-frame files (GIF, TIFF) give their first frame. Models take the uint8 tensors
:func:`to_tensor` makes (see :mod:`pe_dense.backbone.inputs`); :func:`fit_to_contract` resizes an
image to what a model accepts (padding stays the collate's job,
:func:`pe_dense.data.collate.pad_images`).
"""

from __future__ import annotations

import logging
import os
import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps

__all__ = [
    "IMAGE_EXTENSIONS", "VIDEO_EXTENSIONS", "is_image_path", "is_video_path", "ImageLimits",
    "DEFAULT_LIMITS", "BadImageError", "MissingImageError", "check_image_size", "open_checked",
    "read_rgb", "contract_scale", "contract_size", "fit_to_contract", "to_tensor", "check_rgb",
    "read_square",
]

log = logging.getLogger(__name__)

# Lower-case suffixes (with the dot) of the files every command treats as images / videos.
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".gif", ".ppm",
                    ".pgm", ".pnm")
VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg")

_SIXTEEN_BIT = ("I;16", "I;16L", "I;16B", "I;16N")
_warned: set[str] = set()  # kinds of conversion already warned about (once per process)


def is_image_path(path: str | os.PathLike) -> bool:
    """Whether ``path``'s suffix is one of :data:`IMAGE_EXTENSIONS` (any case)."""
    return Path(path).suffix.lower() in IMAGE_EXTENSIONS


def is_video_path(path: str | os.PathLike) -> bool:
    """Whether ``path``'s suffix is one of :data:`VIDEO_EXTENSIONS` (any case)."""
    return Path(path).suffix.lower() in VIDEO_EXTENSIONS


@dataclass(frozen=True)
class ImageLimits:
    """What a readable image may be. ``max_pixels``: width x height (default: PIL's own
    decompression-bomb threshold, about 179 M pixels, e.g. 16384 x 10922); ``max_aspect``:
    long side / short side (default 100)."""

    max_pixels: int = 178_956_970
    max_aspect: float = 100.0

    def __post_init__(self) -> None:
        if self.max_pixels < 1 or self.max_aspect < 1:
            raise ValueError(f"ImageLimits need max_pixels >= 1 and max_aspect >= 1, got "
                             f"{self.max_pixels} and {self.max_aspect}")


DEFAULT_LIMITS = ImageLimits()


class BadImageError(ValueError):
    """A file that is not a readable image within the limits. The message is one line:
    ``<what> <path>: <what is wrong>; <what to do>``; ``path`` holds the file's path."""

    path: str = ""


class MissingImageError(BadImageError, FileNotFoundError):
    """An image path that does not exist (both a :class:`BadImageError` and a
    ``FileNotFoundError``)."""


def _error(cls: type[BadImageError], path: str | os.PathLike, message: str) -> BadImageError:
    error = cls(message)
    error.path = str(path)
    return error


def _megapixels(n: float) -> str:
    return f"{n / 1e6:.1f} M"


def _reason(exc: BaseException) -> str:
    """A short cause for messages: the exception's first line without paths in it."""
    if isinstance(exc, Image.UnidentifiedImageError):
        return "unknown format"
    text = str(exc).split("\n")[0]
    return (text[:80] if text and "/" not in text else type(exc).__name__)


def _bomb(path: Path, exc: Exception, limits: ImageLimits, what: str) -> BadImageError:
    """The :class:`BadImageError` for PIL's own ``DecompressionBombError`` (raised when opening
    files over twice ``PIL.Image.MAX_IMAGE_PIXELS``, before our size check sees them)."""
    found = re.search(r"\((\d+) pixels\)", str(exc))
    size = f"{_megapixels(int(found.group(1)))} pixels" if found else "too many pixels"
    pil_limit = 2 * (Image.MAX_IMAGE_PIXELS or 0)
    if limits.max_pixels <= pil_limit:
        return _error(BadImageError, path, (
            f"{what} {path}: {size} is over the limit of {_megapixels(limits.max_pixels)} (a "
            "decompression bomb?); downscale the file, or raise max_pixels (ImageLimits, "
            "--max-pixels) and PIL.Image.MAX_IMAGE_PIXELS if it is genuine"))
    return _error(BadImageError, path, (
        f"{what} {path}: {size} is over PIL's decompression-bomb limit of "
        f"{_megapixels(pil_limit)}; downscale the file, or raise PIL.Image.MAX_IMAGE_PIXELS"))


def check_image_size(size: tuple[int, int], path: str | os.PathLike = "<array>",
                     limits: ImageLimits | None = None, what: str = "image") -> None:
    """Raise :class:`BadImageError` unless an image of ``size`` = (width, height) (PIL's order)
    is within ``limits`` (default :data:`DEFAULT_LIMITS`)."""
    limits = limits or DEFAULT_LIMITS
    w, h = (int(v) for v in size)
    if w < 1 or h < 1:
        raise _error(BadImageError, path, f"{what} {path}: zero size ({w}x{h}); replace or remove "
                     "the file")
    if w * h > limits.max_pixels:
        raise _error(BadImageError, path, (
            f"{what} {path}: {w}x{h} = {_megapixels(w * h)} pixels is over the limit of "
            f"{_megapixels(limits.max_pixels)} (a decompression bomb?); downscale the file, or "
            "raise max_pixels (ImageLimits, --max-pixels) if it is genuine"))
    aspect = max(w, h) / min(w, h)
    if aspect > limits.max_aspect:
        raise _error(BadImageError, path, (
            f"{what} {path}: {w}x{h} has aspect ratio {aspect:.0f}:1, over the limit of "
            f"{limits.max_aspect:g}:1; crop or pad it, or raise max_aspect (ImageLimits, "
            "--max-aspect)"))


def open_checked(path: str | os.PathLike, limits: ImageLimits | None = None,
                 what: str = "image") -> Image.Image:
    """Open ``path`` with PIL, check its header size against ``limits`` (before any pixel is
    decoded), then decode it (``load()``). Returns the loaded PIL image (close it, or use it in
    a ``with`` block). ``what`` names the file in messages ("image", "label map", ...).

    Raises :class:`MissingImageError` for a missing path and :class:`BadImageError` for a
    folder, a file PIL cannot identify, a truncated or corrupt file and sizes over the limits.
    """
    path = Path(path)
    if path.is_dir():
        raise _error(BadImageError, path, f"{what} {path} is a folder, not an image file; pass "
                     "the image files (or a command that takes folders)")
    if not path.exists():
        raise _error(MissingImageError, path, f"{what} {path} does not exist; check the path")
    if not path.is_file():
        raise _error(BadImageError, path, f"{what} {path} is not a regular file; pass an image "
                     "file")
    limits = limits or DEFAULT_LIMITS
    try:
        with warnings.catch_warnings():  # the size check below is ours
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(path)
    except Image.DecompressionBombError as exc:  # over twice PIL.Image.MAX_IMAGE_PIXELS
        raise _bomb(path, exc, limits, what) from exc
    except PermissionError as exc:
        raise _error(BadImageError, path, f"{what} {path}: permission denied; make the file "
                     "readable") from exc
    except Exception as exc:  # UnidentifiedImageError, OSError, SyntaxError, ... from plugins
        raise _error(BadImageError, path, (
            f"{what} {path}: not an image, or a corrupt one ({_reason(exc)}); replace or "
            "remove the file")) from exc
    try:
        check_image_size(image.size, path, limits, what)
        image.load()
    except BadImageError:
        image.close()
        raise
    except Exception as exc:  # truncated data, broken chunks, zlib errors, ...
        image.close()
        raise _error(BadImageError, path, f"{what} {path}: truncated or corrupt "
                     f"({_reason(exc)}); "
                     "re-export or remove the file") from exc
    return image


def _warn_once(kind: str, message: str, *args: object) -> None:
    if kind in _warned:
        log.debug(message, *args)
        return
    _warned.add(kind)
    log.warning(message + " (said once; later files are converted the same way)", *args)


def _exif_transpose(image: Image.Image, path: Path) -> Image.Image:
    """``image`` turned upright by its EXIF orientation tag (a broken EXIF block is ignored)."""
    try:
        orientation = image.getexif().get(0x0112, 1)
    except Exception:  # malformed EXIF: keep the stored orientation
        log.debug("image %s: unreadable EXIF, orientation not applied", path)
        return image
    if orientation in (None, 1):
        return image
    return ImageOps.exif_transpose(image)


def _grey_to_rgb(grey: np.ndarray) -> np.ndarray:
    return np.repeat(grey[..., None], 3, axis=2)


def _high_depth_to_rgb(image: Image.Image, path: Path) -> np.ndarray:
    """(H, W, 3) uint8 from a 16-bit (``I;16*``), 32-bit integer (``I``) or float (``F``)
    single-channel image."""
    values = np.asarray(image)
    if image.mode in _SIXTEEN_BIT or (image.mode == "I" and values.size
                                      and values.min() >= 0 and values.max() <= 65535):
        _warn_once("16bit", "image %s is 16-bit (mode %s): scaled to 8 bit as value / 257 "
                   "(0..65535 -> 0..255)", path, image.mode)
        grey = np.rint(values.astype(np.float32) / 257.0)
    else:
        values = np.nan_to_num(values.astype(np.float64), nan=0.0, posinf=0.0, neginf=0.0)
        low, high = (float(values.min()), float(values.max())) if values.size else (0.0, 1.0)
        if image.mode == "F" and low >= 0.0 and high <= 1.0:
            _warn_once("float01", "image %s is float (mode F) in [0, 1]: scaled by 255", path)
            grey = np.rint(values * 255.0)
        else:
            _warn_once("stretch", "image %s (mode %s) holds values %g..%g: stretched to 0..255",
                       path, image.mode, low, high)
            grey = np.rint((values - low) * (255.0 / max(high - low, 1e-12)))
    return _grey_to_rgb(np.clip(grey, 0, 255).astype(np.uint8))


def _to_rgb(image: Image.Image, path: Path) -> np.ndarray:
    """A decoded PIL image of any mode -> (H, W, 3) uint8 RGB (a writable array)."""
    mode = image.mode
    if mode == "RGB":
        return np.array(image)
    if mode in _SIXTEEN_BIT or mode in ("I", "F"):
        return _high_depth_to_rgb(image, path)
    if mode == "P" and "transparency" in image.info:  # through RGBA: PIL's own advice
        return np.array(image.convert("RGBA").convert("RGB"))
    for route in (("RGB",), ("RGBA", "RGB")):
        try:
            converted = image
            for step in route:
                converted = converted.convert(step)
            return np.array(converted)
        except ValueError:
            continue
    raise _error(BadImageError, path, f"image {path}: mode {mode} cannot be converted to RGB; "
                 "save it as RGB (or greyscale) PNG/JPEG")


def read_rgb(path: str | os.PathLike, limits: ImageLimits | None = None) -> np.ndarray:
    """An image file -> (H, W, 3) uint8 RGB, upright (EXIF orientation applied), as the module
    docstring describes; a writable array.

    ``limits``: :class:`ImageLimits` (default :data:`DEFAULT_LIMITS`). Raises
    :class:`MissingImageError` (a ``FileNotFoundError``) for a missing path and
    :class:`BadImageError` (a ``ValueError``) for anything else that is not a readable image
    within the limits; memory stays bounded by the limits in every case.
    """
    path = Path(path)
    with open_checked(path, limits) as image:
        upright = _exif_transpose(image, path)
        try:
            return _to_rgb(upright, path)
        finally:
            if upright is not image:
                upright.close()


def contract_scale(size: tuple[int, int], size_divisor: int = 1, square_size: int = 0,
                   max_side: int | None = None, short_side: int | None = None) -> float:
    """The one scale factor :func:`contract_size` applies to an (H, W) ``size``: ``short_side /
    min(H, W)`` when ``short_side`` is given (else 1), lowered so the long side fits ``square_size``
    and ``max_side`` (each rounded down to a multiple of ``size_divisor``)."""
    h, w = (int(v) for v in size)
    if h < 1 or w < 1:
        raise ValueError(f"cannot fit an image of size {h}x{w}")
    d = max(1, int(size_divisor))
    scale = short_side / min(h, w) if short_side else 1.0
    caps = [int(c) for c in (square_size, max_side) if c]
    if caps:
        cap = min(caps) // d * d
        if cap < d:
            raise ValueError(f"long-side limit {min(caps)} is below the size divisor {d}: use a "
                             f"square_size / max_side of at least {d}")
        scale = min(scale, cap / max(h, w))
    return scale


def contract_size(size: tuple[int, int], size_divisor: int = 1, square_size: int = 0,
                  max_side: int | None = None, short_side: int | None = None) -> tuple[int, int]:
    """The (h, w) an (H, W) image is resized to for a model, aspect ratio kept.

    ``short_side``: scale (up or down) so the short side is about this (None: keep the size);
    ``square_size`` (0: none) and ``max_side`` (None: none): the long side stays at or below
    them (images are shrunk, never padded here); ``size_divisor``: both sides are rounded to
    multiples of it (1: no rounding; at least one multiple) -- e.g. the patch size for a bare
    backbone. Detection models pad to their divisor in the collate, so pass 1 for them.
    """
    d = max(1, int(size_divisor))
    scale = contract_scale(size, d, square_size, max_side, short_side)
    return tuple(max(d, round(int(v) * scale / d) * d) for v in size)


def fit_to_contract(image: np.ndarray, size_divisor: int = 1, square_size: int = 0,
                    max_side: int | None = None, short_side: int | None = None,
                    ) -> tuple[np.ndarray, tuple[float, float]]:
    """Resize an (H, W, 3) uint8 image to :func:`contract_size` (bilinear, antialiased when
    shrinking, as the detection test pipeline's ``ResizeLongestSide``).

    Returns the (h, w, 3) uint8 image (``image`` itself when no resize is needed) and the scale
    ``(h / H, w / W)``: divide output coordinates by it to get back to ``image``'s pixels.
    Padding to the model's size divisor or square stays the collate's job
    (:func:`pe_dense.data.collate.pad_images`).
    """
    from pe_dense.data.det_transforms import resize_image

    check_rgb(image)
    h0, w0 = image.shape[:2]
    h, w = contract_size((h0, w0), size_divisor, square_size, max_side, short_side)
    if (h, w) == (h0, w0):
        return image, (1.0, 1.0)
    return resize_image(image, (h, w)), (h / h0, w / w0)


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


def read_square(path: str | os.PathLike, size: int) -> torch.Tensor:
    """Read an image as RGB (:func:`read_rgb`) and resize it to ``size`` x ``size`` (PIL
    bilinear, aspect ratio not kept) -> (3, size, size) uint8."""
    rgb = Image.fromarray(read_rgb(path)).resize((size, size), Image.BILINEAR)
    return to_tensor(np.asarray(rgb))
