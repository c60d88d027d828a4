"""Semantic-segmentation datasets and transforms (``docs/dense_protocols.md`` section 2).

Layouts:

- :class:`SegFolderDataset`: ``root/<img_dir>/*`` and ``root/<ann_dir>/*`` paired by file stem
  (CamVid-style: ``images/*.png`` RGB, ``labels/*.png`` class index per pixel), with an ignore
  index (CamVid: 11 = void).
- :class:`ADE20KDataset`: ``ADEChallengeData2016/{images,annotations}/{training,validation}``,
  ``reduce_zero_label`` (0 "other" -> 255, classes 1..150 -> 0..149).

A sample is ``{"image": (3, H, W) uint8 RGB, "label": (H, W) int64, "path": str,
"ori_size": (H0, W0)}`` after ``transforms`` (no normalisation here: the model's ``preprocess``
does it); transforms work on ``(image uint8 (H, W, 3), label (H, W) int64)`` numpy pairs.
:func:`seg_collate` pads a list of samples into the model's batch (the one padding step).
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from pe_dense.data.collate import pad_images
from pe_dense.data.images import open_checked, read_rgb, to_tensor

__all__ = [
    "CAMVID_CLASSES", "ADE20K_CLASSES", "LabelMapDataset", "SegFolderDataset", "ADE20KDataset",
    "RandomResize", "Resize", "RandomCrop", "RandomFlip", "PhotoMetricDistortion", "Compose",
    "seg_collate", "build_seg_transforms",
]

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
CAMVID_CLASSES = ("sky", "building", "pole", "road", "pavement", "tree", "sign", "fence", "car",
                  "pedestrian", "bicyclist")
ADE20K_CLASSES = tuple((
    "wall building sky floor tree ceiling road bed windowpane grass cabinet sidewalk person earth "
    "door table mountain plant curtain chair car water painting sofa shelf house sea mirror rug "
    "field armchair seat fence desk rock wardrobe lamp bathtub railing cushion base box column "
    "signboard chest_of_drawers counter sand sink skyscraper fireplace refrigerator grandstand "
    "path stairs runway case pool_table pillow screen_door stairway river bridge bookcase blind "
    "coffee_table toilet flower book hill bench countertop stove palm kitchen_island computer "
    "swivel_chair boat bar arcade_machine hovel bus towel light truck tower chandelier awning "
    "streetlight booth television_receiver airplane dirt_track apparel pole land bannister "
    "escalator ottoman bottle buffet poster stage van ship fountain conveyer_belt canopy washer "
    "plaything swimming_pool stool barrel basket waterfall tent bag minibike cradle oven ball "
    "food step tank trade_name microwave pot animal bicycle lake dishwasher screen blanket "
    "sculpture hood sconce vase traffic_light tray ashcan fan pier crt_screen plate monitor "
    "bulletin_board shower radiator glass clock flag").split())

Pair = tuple[np.ndarray, np.ndarray]


def read_label(path: str | Path) -> np.ndarray:
    """(H, W) int64 class map from a single-channel (L or P mode) PNG (opened with
    :func:`~pe_dense.data.images.open_checked`: bad files and bombs raise ``BadImageError``)."""
    with open_checked(path, what="label map") as im:
        if im.mode not in ("L", "P", "I", "I;16"):
            raise ValueError(f"label {path} has mode {im.mode}: expected a single-channel class "
                             "index image (L or P mode), not colours")
        return np.asarray(im).astype(np.int64)


def _files(folder: Path, suffixes: Sequence[str]) -> dict[str, Path]:
    return {p.stem: p for p in sorted(folder.iterdir()) if p.suffix.lower() in suffixes}


class LabelMapDataset(torch.utils.data.Dataset):
    """What every (image, label map) dataset shares: the transforms (a callable on (image, label)
    or :func:`build_seg_transforms` keyword arguments), ``metainfo`` and the sample dict.
    Subclasses set ``classes``, ``ignore_index`` and ``transforms`` (via :meth:`_set_transforms`)
    and define ``__len__``, ``load(index) -> (image (H, W, 3) uint8, label (H, W) int64)`` and
    ``path_of(index)``."""

    classes: tuple[str, ...] = ()
    ignore_index: int = 255
    transforms: Callable[[np.ndarray, np.ndarray], Pair] | None = None

    def _set_transforms(self, transforms: Callable[[np.ndarray, np.ndarray], Pair] | dict | None
                        ) -> None:
        self.transforms = (build_seg_transforms(ignore_index=self.ignore_index, **transforms)
                           if isinstance(transforms, dict) else transforms)

    @property
    def metainfo(self) -> dict:
        """``{"classes", "ignore_index"}``; mmengine stores it in checkpoints (dataset_meta)."""
        return {"classes": self.classes, "ignore_index": self.ignore_index}

    def load(self, index: int) -> Pair:
        raise NotImplementedError

    def path_of(self, index: int) -> str:
        raise NotImplementedError

    def __getitem__(self, index: int) -> dict:
        """``{"image": (3, h, w) uint8, "label": (h, w) int64, "path", "ori_size": (H, W)}``
        after the transforms."""
        image, label = self.load(index)
        ori_size = label.shape
        if self.transforms is not None:
            image, label = self.transforms(image, label)
        return {"image": to_tensor(np.ascontiguousarray(image)),
                "label": torch.from_numpy(np.ascontiguousarray(label)).long(),
                "path": self.path_of(index), "ori_size": tuple(ori_size)}


class SegFolderDataset(LabelMapDataset):
    """Images and label maps in two folders, paired by file stem.

    ``num_classes``: labels must be in ``0..num_classes-1`` or ``ignore_index`` (checked per
    sample, a ``ValueError`` naming the file otherwise). ``reduce_zero_label``: map 0 to
    ``ignore_index`` and shift the others down by one (ADE20K). ``transforms``: a callable on
    (image, label) or the keyword arguments of :func:`build_seg_transforms` (as in configs).
    ``subset``: (start, stop) slice of the sorted pairs, e.g. (0, 20) and (20, None).
    """

    def __init__(self, root: str | Path, *, num_classes: int, img_dir: str = "images",
                 ann_dir: str = "labels", ignore_index: int = 255,
                 reduce_zero_label: bool = False, classes: Sequence[str] | None = None,
                 transforms: Callable[[np.ndarray, np.ndarray], Pair] | dict | None = None,
                 subset: tuple[int | None, int | None] | None = None) -> None:
        root = Path(root)
        img_root, ann_root = root / img_dir, root / ann_dir
        for folder in (img_root, ann_root):
            if not folder.is_dir():
                raise FileNotFoundError(f"segmentation folder {folder} does not exist")
        images = _files(img_root, IMAGE_SUFFIXES)
        labels = _files(ann_root, (".png",))
        missing = sorted(set(images) - set(labels))
        if missing:
            log.warning("%d image(s) in %s have no label in %s and are skipped (first: %s)",
                        len(missing), img_root, ann_root, missing[0])
        stems = sorted(set(images) & set(labels))
        if subset is not None:
            stems = stems[slice(*subset)]
        if not stems:
            raise ValueError(f"empty split: no image in {img_root} has a label PNG with the same "
                             f"name in {ann_root}")
        self.samples = [(images[s], labels[s]) for s in stems]
        self.num_classes, self.ignore_index = num_classes, ignore_index
        self.reduce_zero_label = reduce_zero_label
        self.classes = tuple(classes) if classes else tuple(str(i) for i in range(num_classes))
        if len(self.classes) != num_classes:
            raise ValueError(f"{len(self.classes)} class names for num_classes={num_classes}")
        self._set_transforms(transforms)

    def path_of(self, index: int) -> str:
        return str(self.samples[index][0])

    def __len__(self) -> int:
        return len(self.samples)

    def load(self, index: int) -> Pair:
        """The raw (image, label) pair, label reduced and checked."""
        img_path, ann_path = self.samples[index]
        image, label = read_rgb(img_path), read_label(ann_path)
        if image.shape[:2] != label.shape:
            raise ValueError(f"image {img_path} is {image.shape[1]}x{image.shape[0]} but its "
                             f"label {ann_path} is {label.shape[1]}x{label.shape[0]}")
        if self.reduce_zero_label:
            label = np.where(label == 0, 255, label - 1)
            label[label == 254] = 255
            label[label == 255] = self.ignore_index
        bad = (label != self.ignore_index) & ((label < 0) | (label >= self.num_classes))
        if bad.any():
            values = np.unique(label[bad])[:8].tolist()
            raise ValueError(f"label {ann_path} has values {values} outside 0.."
                             f"{self.num_classes - 1} (ignore index {self.ignore_index}): check "
                             "num_classes, ignore_index and reduce_zero_label")
        return image, label



class ADE20KDataset(SegFolderDataset):
    """ADE20K (``ADEChallengeData2016``): 150 classes, ``reduce_zero_label=True``.

    ``split``: ``"training"`` or ``"validation"``.
    """

    def __init__(self, root: str | Path, *, split: str = "training", **kwargs) -> None:
        if split not in ("training", "validation"):
            raise ValueError(f"split={split!r}: use 'training' or 'validation'")
        kwargs.setdefault("classes", ADE20K_CLASSES)
        super().__init__(root, num_classes=150, img_dir=f"images/{split}",
                         ann_dir=f"annotations/{split}", reduce_zero_label=True, **kwargs)


# ------------------------------------------------------------------------------ transforms


class Compose:
    """Apply (image, label) transforms in order."""

    def __init__(self, transforms: Sequence[Callable[[np.ndarray, np.ndarray], Pair]]) -> None:
        self.transforms = list(transforms)

    def __call__(self, image: np.ndarray, label: np.ndarray) -> Pair:
        for t in self.transforms:
            image, label = t(image, label)
        return image, label


def _rescale_size(h: int, w: int, scale: tuple[int, int]) -> tuple[int, int]:
    """mmcv ``rescale`` with keep_ratio: fit (h, w) in the (long, short) box ``scale``."""
    long_edge, short_edge = max(scale), min(scale)
    factor = min(long_edge / max(h, w), short_edge / min(h, w))
    return int(h * factor + 0.5), int(w * factor + 0.5)


def _resize_pair(image: np.ndarray, label: np.ndarray, size: tuple[int, int]) -> Pair:
    h, w = size
    image = np.asarray(Image.fromarray(image).resize((w, h), Image.BILINEAR))
    lab = Image.fromarray(label.astype(np.int32), mode="I").resize((w, h), Image.NEAREST)
    return image, np.asarray(lab).astype(np.int64)


class Resize:
    """Keep-ratio resize into the (long, short) box ``scale``, e.g. (2048, 512)."""

    def __init__(self, scale: tuple[int, int] = (2048, 512)) -> None:
        self.scale = tuple(scale)

    def __call__(self, image: np.ndarray, label: np.ndarray) -> Pair:
        return _resize_pair(image, label, _rescale_size(*label.shape, self.scale))


class RandomResize:
    """Keep-ratio resize into ``scale`` times a ratio drawn uniformly from ``ratio_range``."""

    def __init__(self, scale: tuple[int, int] = (2048, 512),
                 ratio_range: tuple[float, float] = (0.5, 2.0)) -> None:
        self.scale, self.ratio_range = tuple(scale), tuple(ratio_range)

    def __call__(self, image: np.ndarray, label: np.ndarray) -> Pair:
        r = random.uniform(*self.ratio_range)
        box = (int(self.scale[0] * r), int(self.scale[1] * r))
        return _resize_pair(image, label, _rescale_size(*label.shape, box))


class RandomCrop:
    """Random ``crop_size`` (h, w) crop, padded with 0 / ``ignore_index`` when the image is
    smaller. ``cat_max_ratio`` < 1: retry (up to 10 times) while one class covers more than
    that fraction of the crop's labelled pixels (mmseg's rule)."""

    def __init__(self, crop_size: tuple[int, int], cat_max_ratio: float = 1.0,
                 ignore_index: int = 255) -> None:
        self.crop_size, self.cat_max_ratio = tuple(crop_size), cat_max_ratio
        self.ignore_index = ignore_index

    def _box(self, h: int, w: int) -> tuple[int, int]:
        return random.randint(0, max(h - self.crop_size[0], 0)), random.randint(
            0, max(w - self.crop_size[1], 0))

    def __call__(self, image: np.ndarray, label: np.ndarray) -> Pair:
        ch, cw = self.crop_size
        image, label = pad_pair(image, label, (ch, cw), self.ignore_index)
        y, x = self._box(*label.shape)
        if self.cat_max_ratio < 1.0:
            for _ in range(10):
                crop = label[y:y + ch, x:x + cw]
                _, counts = np.unique(crop[crop != self.ignore_index], return_counts=True)
                if len(counts) > 1 and counts.max() / counts.sum() < self.cat_max_ratio:
                    break
                y, x = self._box(*label.shape)
        return image[y:y + ch, x:x + cw], label[y:y + ch, x:x + cw]


def pad_pair(image: np.ndarray, label: np.ndarray, size: tuple[int, int],
             ignore_index: int) -> Pair:
    """Pad bottom/right up to at least ``size``: image with 127 (about 0 after PE normalisation),
    label with ``ignore_index``."""
    h, w = label.shape
    ph, pw = max(size[0] - h, 0), max(size[1] - w, 0)
    if ph or pw:
        image = np.pad(image, ((0, ph), (0, pw), (0, 0)), constant_values=127)
        label = np.pad(label, ((0, ph), (0, pw)), constant_values=ignore_index)
    return image, label


class RandomFlip:
    """Horizontal flip with probability ``prob``."""

    def __init__(self, prob: float = 0.5) -> None:
        self.prob = prob

    def __call__(self, image: np.ndarray, label: np.ndarray) -> Pair:
        if random.random() < self.prob:
            return image[:, ::-1], label[:, ::-1]
        return image, label


class PhotoMetricDistortion:
    """mmseg's photometric distortion, each step with probability 0.5: brightness
    (+-``brightness_delta``), contrast (x ``contrast_range``, before or after the colour
    steps), saturation (x ``saturation_range``), hue (+-``hue_delta`` degrees)."""

    def __init__(self, brightness_delta: int = 32, contrast_range: tuple[float, float] = (0.5, 1.5),
                 saturation_range: tuple[float, float] = (0.5, 1.5), hue_delta: int = 18) -> None:
        self.brightness_delta, self.hue_delta = brightness_delta, hue_delta
        self.contrast_range, self.saturation_range = contrast_range, saturation_range

    def __call__(self, image: np.ndarray, label: np.ndarray) -> Pair:
        img = image.astype(np.float32)
        if random.random() < 0.5:
            img = img + random.uniform(-self.brightness_delta, self.brightness_delta)
        contrast_first = random.random() < 0.5
        if contrast_first and random.random() < 0.5:
            img = img * random.uniform(*self.contrast_range)
        img = np.clip(img, 0, 255).astype(np.uint8)
        do_saturation, do_hue = random.random() < 0.5, random.random() < 0.5
        if do_saturation or do_hue:
            hsv = np.asarray(Image.fromarray(img).convert("HSV")).astype(np.float32)
            if do_saturation:
                hsv[..., 1] = np.clip(hsv[..., 1] * random.uniform(*self.saturation_range), 0, 255)
            if do_hue:  # PIL hue is 0..255 for 0..360 degrees
                shift = random.uniform(-self.hue_delta, self.hue_delta) * 255 / 360
                hsv[..., 0] = (hsv[..., 0] + shift) % 256
            img = np.asarray(Image.fromarray(hsv.astype(np.uint8), "HSV").convert("RGB"))
        if not contrast_first and random.random() < 0.5:
            img = np.clip(img.astype(np.float32) * random.uniform(*self.contrast_range), 0, 255)
        return np.asarray(img, dtype=np.uint8), label


def build_seg_transforms(*, train: bool, crop_size: tuple[int, int] = (512, 512),
                         scale: tuple[int, int] = (2048, 512),
                         ratio_range: tuple[float, float] = (0.5, 2.0),
                         cat_max_ratio: float = 0.75, flip_prob: float = 0.5,
                         photometric: bool = True, ignore_index: int = 255) -> Compose:
    """The standard ADE20K pipelines: train = random resize, random crop with
    ``cat_max_ratio``, flip, photometric distortion; test = keep-ratio resize to ``scale``."""
    if not train:
        return Compose([Resize(scale)])
    steps: list = [RandomResize(scale, ratio_range),
                   RandomCrop(crop_size, cat_max_ratio, ignore_index), RandomFlip(flip_prob)]
    if photometric:
        steps.append(PhotoMetricDistortion())
    return Compose(steps)


def seg_collate(samples: Sequence[dict], ignore_index: int = 255,
                size_divisor: int = 1) -> dict:
    """Samples -> the Segmentor's batch, padded bottom/right once to a common size (a multiple
    of ``size_divisor``, the model's: patch size, or the pyramid's coarsest stride).

    Returns ``{"inputs": (B, 3, H, W) uint8 (zero-padded), "data_samples": [{"label": (H, W)
    int64 padded with ignore_index, "gt_label": the label before padding, "size": (h, w)
    before padding, "ori_size", "path"}]}``.
    """
    images = pad_images([s["image"] for s in samples], size_divisor)
    h, w = images.shape[-2:]
    data_samples = []
    for s in samples:
        label = torch.full((h, w), ignore_index, dtype=torch.long)
        sh, sw = s["label"].shape
        label[:sh, :sw] = s["label"]
        data_samples.append({"label": label, "gt_label": s["label"],
                             "size": tuple(s["image"].shape[-2:]), "ori_size": s["ori_size"],
                             "path": s["path"]})
    return {"inputs": images, "data_samples": data_samples}
