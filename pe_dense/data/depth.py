"""Monocular depth datasets (NYUv2 layouts) and transforms (``docs/dense_protocols.md`` 3.1).

Layouts (depth PNGs are 16-bit, ``depth_scale`` units per metre: 1000 for millimetres):

- :class:`NYUFolderDataset`: ``image_K.png`` / ``depth_K.png`` pairs in one folder, listed by an
  optional CSV with ``image_path,depth_path`` columns (``nyu_mini``), else paired by the
  ``image_`` / ``depth_`` prefixes.
- :class:`NYUSplitDataset`: the common split-file layout (BTS, the depth toolbox):
  each line ``<rgb path> <depth path> [focal]`` relative to ``data_root``.

``transforms``: a callable on (image, depth) or the keyword arguments of
:class:`DepthTransform` (as in configs).

A sample is ``{"image": (3, H, W) uint8 RGB, "depth": (1, H, W) float32 metres,
"path": str}`` (no normalisation here: the model's ``preprocess`` does it);
:func:`depth_collate` pads samples into the model's batch (the one padding step).
Depth 0 or non-finite means "no measurement": such pixels are ignored by the losses and
metrics; NaNs are set to 0 and counted, and a map without any valid pixel is
logged (training skips it through the loss mask, evaluation counts it as skipped).
"""

from __future__ import annotations

import csv
import logging
import random
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from pe_dense.data.collate import pad_images
from pe_dense.data.images import open_checked, read_rgb, to_tensor

__all__ = ["NYUFolderDataset", "NYUSplitDataset", "DepthTransform", "read_depth",
           "depth_collate", "NYU_BORDER_CROP"]

log = logging.getLogger(__name__)

# The white border of the raw NYUv2 frames (the toolbox's NYUCrop): rows 45..471, cols 43..607.
NYU_BORDER_CROP = (45, 472, 43, 608)


def read_depth(path: str | Path, depth_scale: float = 1000.0) -> np.ndarray:
    """(H, W) float32 metres from a 16-bit (or float) single-channel depth image (opened with
    :func:`~pe_dense.data.images.open_checked`: bad files and bombs raise ``BadImageError``)."""
    with open_checked(path, what="depth map") as im:
        if im.mode not in ("I;16", "I", "F", "I;16B", "L"):
            raise ValueError(f"depth map {path} has mode {im.mode}: expected a 16-bit PNG")
        depth = np.asarray(im).astype(np.float32) / depth_scale
    return depth


class _DepthDataset(torch.utils.data.Dataset):
    def __init__(self, pairs: list[tuple[Path, Path]], depth_scale: float,
                 transforms: Callable | None, max_depth: float, source: str) -> None:
        if not pairs:
            raise ValueError(f"empty split: no image/depth pairs found in {source}")
        if isinstance(transforms, dict):
            transforms = DepthTransform(**transforms)
        self.pairs, self.depth_scale, self.transforms = pairs, depth_scale, transforms
        self.max_depth = max_depth
        self.invalid_pixels = 0
        self.empty_maps = 0

    @property
    def metainfo(self) -> dict:
        """``{"depth_scale", "max_depth"}``; mmengine stores it in checkpoints (dataset_meta)."""
        return {"depth_scale": self.depth_scale, "max_depth": self.max_depth}

    def __len__(self) -> int:
        return len(self.pairs)

    def load(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        img_path, depth_path = self.pairs[index]
        image = read_rgb(img_path)
        depth = read_depth(depth_path, self.depth_scale)
        if image.shape[:2] != depth.shape:
            raise ValueError(f"image {img_path} is {image.shape[1]}x{image.shape[0]} but depth "
                             f"{depth_path} is {depth.shape[1]}x{depth.shape[0]}")
        bad = ~np.isfinite(depth)
        if bad.any():
            log.warning("depth %s: %d non-finite pixels set to 0 (ignored)", depth_path,
                        int(bad.sum()))
            depth = np.where(bad, 0.0, depth).astype(np.float32)
        invalid = int((depth <= 0).sum())
        self.invalid_pixels += invalid
        if invalid == depth.size:
            self.empty_maps += 1
            log.warning("depth %s has no valid pixel (%d such maps so far); it contributes "
                        "nothing to the loss and is skipped in evaluation", depth_path,
                        self.empty_maps)
        return image, depth

    def __getitem__(self, index: int) -> dict:
        image, depth = self.load(index)
        if self.transforms is not None:
            image, depth = self.transforms(image, depth)
        return {"image": to_tensor(np.ascontiguousarray(image)),
                "depth": torch.from_numpy(np.array(depth, dtype=np.float32))[None],
                "path": str(self.pairs[index][0])}


class NYUFolderDataset(_DepthDataset):
    """``image_K.png`` / ``depth_K.png`` in ``root`` (``nyu_mini``), 16-bit millimetres.

    ``csv_file``: a CSV (``image_path,depth_path``) relative to ``root``; by default the only
    ``*.csv`` in ``root`` if there is one, else pairs by prefix. ``subset``: (start, stop)
    slice of the pairs.
    """

    def __init__(self, root: str | Path, *, csv_file: str | None = None,
                 depth_scale: float = 1000.0, transforms: Callable | dict | None = None,
                 max_depth: float = 10.0,
                 subset: tuple[int | None, int | None] | None = None) -> None:
        root = Path(root)
        if not root.is_dir():
            raise FileNotFoundError(f"depth data folder {root} does not exist")
        csvs = [root / csv_file] if csv_file else sorted(root.glob("*.csv"))
        if len(csvs) == 1:
            with open(csvs[0], newline="") as f:
                rows = list(csv.DictReader(f))
            if rows and not {"image_path", "depth_path"} <= set(rows[0]):
                raise ValueError(f"{csvs[0]} needs image_path,depth_path columns")
            pairs = [(root / r["image_path"], root / r["depth_path"]) for r in rows]
        else:
            pairs = [(p, p.with_name(p.name.replace("image_", "depth_", 1)))
                     for p in sorted(root.glob("image_*"))]
        missing = [str(d) for i, d in pairs if not i.exists() or not d.exists()]
        if missing:
            raise FileNotFoundError(f"{len(missing)} listed files are missing, e.g. {missing[0]}")
        super().__init__(pairs[slice(*(subset or (None,)))], depth_scale, transforms,
                         max_depth, str(root))


class NYUSplitDataset(_DepthDataset):
    """Split-file layout: lines ``<rgb> <depth> [focal]`` relative to ``data_root``
    (e.g. ``/kitchen_0028b/rgb_00045.jpg /kitchen_0028b/sync_depth_00045.png 518.8579``)."""

    def __init__(self, data_root: str | Path, split_file: str | Path, *,
                 depth_scale: float = 1000.0, transforms: Callable | dict | None = None,
                 max_depth: float = 10.0,
                 subset: tuple[int | None, int | None] | None = None) -> None:
        data_root, split_file = Path(data_root), Path(split_file)
        if not split_file.is_file():
            raise FileNotFoundError(f"split file {split_file} does not exist")
        pairs, skipped = [], 0
        for line in split_file.read_text().splitlines():
            parts = line.split()
            if len(parts) < 2 or parts[1] == "None":
                skipped += bool(parts)
                continue
            rgb, dep = (data_root / p.lstrip("/") for p in parts[:2])
            if not rgb.exists() or not dep.exists():
                skipped += 1
                continue
            pairs.append((rgb, dep))
        if skipped:
            log.warning("%s: %d lines skipped (no depth or missing files)", split_file, skipped)
        super().__init__(pairs[slice(*(subset or (None,)))], depth_scale, transforms,
                         max_depth, str(split_file))


class DepthTransform:
    """NYU training / test augmentation on (image uint8 (H, W, 3), depth (H, W) metres).

    ``border_crop``: cut the white NYU border first (train only, as the toolbox's NYUCrop).
    Train: rotation of +-``rotate_degree`` with probability 0.5 (bilinear image, nearest depth,
    zero fill = invalid), horizontal flip, random ``crop_size`` crop, and colour jitter (gamma
    0.9-1.1, brightness 0.75-1.25, per-channel colour 0.9-1.1) with probability 0.5.
    ``scale``: resize factor applied before the crop (image bilinear, depth nearest), for
    cheap low-resolution training (``crop_size`` is then in scaled pixels).
    Test: unchanged (the collate pads to the patch size; metrics use the Eigen crop).
    """

    def __init__(self, *, train: bool, crop_size: tuple[int, int] = (416, 544),
                 border_crop: bool = True, rotate_degree: float = 2.5, flip_prob: float = 0.5,
                 color_prob: float = 0.5, scale: float = 1.0) -> None:
        self.train, self.crop_size, self.border_crop = train, tuple(crop_size), border_crop
        self.scale = scale
        self.rotate_degree, self.flip_prob, self.color_prob = rotate_degree, flip_prob, color_prob

    def __call__(self, image: np.ndarray, depth: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if not self.train:
            return image, depth
        if self.border_crop and image.shape[:2] == (480, 640):
            t, b, left, r = NYU_BORDER_CROP
            image, depth = image[t:b, left:r], depth[t:b, left:r]
        if self.rotate_degree and random.random() < 0.5:
            angle = random.uniform(-self.rotate_degree, self.rotate_degree)
            image = np.asarray(Image.fromarray(image).rotate(angle, Image.BILINEAR))
            depth = np.asarray(Image.fromarray(depth, mode="F").rotate(angle, Image.NEAREST))
        if random.random() < self.flip_prob:
            image, depth = image[:, ::-1], depth[:, ::-1]
        if self.scale != 1.0:
            h, w = round(depth.shape[0] * self.scale), round(depth.shape[1] * self.scale)
            image = np.asarray(Image.fromarray(np.ascontiguousarray(image)).resize(
                (w, h), Image.BILINEAR))
            depth = np.asarray(Image.fromarray(np.ascontiguousarray(depth), mode="F").resize(
                (w, h), Image.NEAREST))
        image, depth = self._crop(image, depth)
        if random.random() < self.color_prob:
            image = self._color(image)
        return image, depth

    def _crop(self, image: np.ndarray, depth: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        ch, cw = self.crop_size
        h, w = depth.shape
        if h < ch or w < cw:
            raise ValueError(f"depth sample {w}x{h} is smaller than the crop {cw}x{ch}")
        y, x = random.randint(0, h - ch), random.randint(0, w - cw)
        return image[y:y + ch, x:x + cw], depth[y:y + ch, x:x + cw]

    @staticmethod
    def _color(image: np.ndarray) -> np.ndarray:
        img = image.astype(np.float32) / 255.0
        img = img ** random.uniform(0.9, 1.1)
        img = img * random.uniform(0.75, 1.25)
        img = img * np.random.uniform(0.9, 1.1, size=3).astype(np.float32)
        return (np.clip(img, 0, 1) * 255).round().astype(np.uint8)


def depth_collate(samples: Sequence[dict], size_divisor: int = 1) -> dict:
    """Samples -> the DepthEstimator's batch, padded bottom/right once to a common size (a
    multiple of ``size_divisor``, the model's patch size).

    Returns ``{"inputs": (B, 3, H, W) uint8 (zero-padded), "data_samples": [{"depth": (1, H, W)
    metres padded with 0 (invalid), "size": (h, w) before padding, "path"}]}``.
    """
    images = pad_images([s["image"] for s in samples], size_divisor)
    h, w = images.shape[-2:]
    data_samples = []
    for s in samples:
        sh, sw = s["depth"].shape[-2:]
        depth = F.pad(s["depth"], (0, w - sw, 0, h - sh))
        data_samples.append({"depth": depth, "size": tuple(s["image"].shape[-2:]),
                             "path": s["path"]})
    return {"inputs": images, "data_samples": data_samples}
