"""COCO-format instance datasets through pycocotools (config type ``"CocoDetection"``).

Polygon and RLE masks are decoded per image; crowd regions are left out of the training targets
(COCOeval ignores them itself); category ids map to contiguous 0-based labels in id order. Bad
input is reported, not crashed on: a missing or malformed annotation file raises a clear error;
missing image files, annotations with unknown category ids, and zero-area or out-of-image boxes
are skipped, counted and logged once.
"""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
from torch.utils.data import Dataset

from pe_dense.data.det_transforms import Compose
from pe_dense.data.images import read_rgb
from pe_dense.utils.coco import load_coco_json

__all__ = ["CocoDetection", "COCO_CLASSES"]

log = logging.getLogger(__name__)


# The 80 COCO category names in category-id order (the demo's default detector labels, the
# COCO bridge config's prompts).
COCO_CLASSES = (
    "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat",
    "traffic light", "fire hydrant", "stop sign", "parking meter", "bench", "bird", "cat", "dog",
    "horse", "sheep", "cow", "elephant", "bear", "zebra", "giraffe", "backpack", "umbrella",
    "handbag", "tie", "suitcase", "frisbee", "skis", "snowboard", "sports ball", "kite",
    "baseball bat", "baseball glove", "skateboard", "surfboard", "tennis racket", "bottle",
    "wine glass", "cup", "fork", "knife", "spoon", "bowl", "banana", "apple", "sandwich",
    "orange", "broccoli", "carrot", "hot dog", "pizza", "donut", "cake", "chair", "couch",
    "potted plant", "bed", "dining table", "toilet", "tv", "laptop", "mouse", "remote",
    "keyboard", "cell phone", "microwave", "oven", "toaster", "sink", "refrigerator", "book",
    "clock", "vase", "scissors", "teddy bear", "hair drier", "toothbrush")


class CocoDetection(Dataset):
    """Images and instances of a COCO JSON file.

    ``ann_file``: instances JSON; ``img_dir``: folder of the ``file_name`` entries;
    ``pipeline``: transforms or their config dicts (see :mod:`pe_dense.data.det_transforms`),
    ending with ``PackDetInputs``; ``filter_empty``: drop images without usable (non-crowd)
    instances (training); ``with_masks``: decode instance masks; ``max_images``: keep the first
    N images. Items are whatever the pipeline returns; ``metainfo`` has ``classes`` and ``cat_ids``.
    """

    def __init__(self, ann_file: str, img_dir: str, pipeline: list[Any] | None = None, *,
                 filter_empty: bool = False, with_masks: bool = True,
                 max_images: int | None = None, test_mode: bool = False) -> None:
        data = load_coco_json(ann_file)
        self.ann_file, self.img_dir = str(ann_file), Path(img_dir)
        if not self.img_dir.is_dir():
            raise FileNotFoundError(f"image folder {self.img_dir} does not exist")
        self.with_masks = with_masks
        self.test_mode = test_mode
        cats = sorted(data["categories"], key=lambda c: c["id"])
        self.cat_ids = [c["id"] for c in cats]
        self.cat2label = {cid: i for i, cid in enumerate(self.cat_ids)}
        self.metainfo = {"classes": tuple(c["name"] for c in cats), "cat_ids": tuple(self.cat_ids)}
        self.skipped: Counter[str] = Counter()
        self.images = self._index(data, filter_empty)
        if max_images is not None:
            self.images = self.images[:max_images]
        if not self.images:
            raise ValueError(f"no usable images in {ann_file} (skipped: {dict(self.skipped)}); "
                             "check img_dir and filter_empty")
        self.pipeline = Compose(list(pipeline or [{"type": "PackDetInputs"}]))

    def _index(self, data: dict[str, Any], filter_empty: bool) -> list[dict[str, Any]]:
        by_image: dict[int, list[dict]] = {img["id"]: [] for img in data["images"]}
        for ann in data["annotations"]:
            if ann.get("category_id") not in self.cat2label:
                self.skipped["unknown category id"] += 1
            elif ann.get("image_id") not in by_image:
                self.skipped["annotation of an unlisted image"] += 1
            else:
                by_image[ann["image_id"]].append(ann)
        images = []
        for img in data["images"]:
            if not (self.img_dir / img["file_name"]).is_file():
                self.skipped["missing image file"] += 1
                continue
            anns = [a for a in by_image[img["id"]] if self._usable(a, img)]
            if filter_empty and not any(not a.get("iscrowd", 0) for a in anns):
                self.skipped["image without instances (filter_empty)"] += 1
                continue
            images.append({**img, "anns": anns})
        if self.skipped:
            log.warning("%s: skipped %s", self.ann_file,
                        ", ".join(f"{n} x {why}" for why, n in self.skipped.items()))
        return images

    def _usable(self, ann: dict[str, Any], img: dict[str, Any]) -> bool:
        bbox = ann.get("bbox")
        if not bbox or len(bbox) != 4:
            self.skipped["annotation without a bbox"] += 1
            return False
        x, y, w, h = bbox
        x0, y0 = max(x, 0.0), max(y, 0.0)
        x1, y1 = min(x + w, img["width"]), min(y + h, img["height"])
        if x1 - x0 < 1 or y1 - y0 < 1:
            self.skipped["zero-area or out-of-image box"] += 1
            return False
        return True

    def __len__(self) -> int:
        return len(self.images)

    def load(self, index: int) -> dict[str, Any]:
        """The raw ``results`` dict of image ``index`` (before the pipeline)."""
        img = self.images[index]
        path = self.img_dir / img["file_name"]
        try:
            image = read_rgb(path)
        except (OSError, ValueError) as exc:
            raise OSError(f"cannot read image {path} ({exc}); fix or remove it from "
                          f"{self.ann_file}") from exc
        h, w = image.shape[:2]
        if (h, w) != (img["height"], img["width"]):
            log.warning("%s is %dx%d but the annotation file says %dx%d; using the file's size",
                        path, h, w, img["height"], img["width"])
        anns = [a for a in img["anns"] if not a.get("iscrowd", 0)]
        boxes = np.array([a["bbox"] for a in anns], np.float32).reshape(-1, 4)
        boxes[:, 2:] += boxes[:, :2]
        boxes[:, 0::2] = boxes[:, 0::2].clip(0, w)
        boxes[:, 1::2] = boxes[:, 1::2].clip(0, h)
        results = {"image": image, "boxes": boxes, "image_id": img["id"], "ori_size": (h, w),
                   "labels": np.array([self.cat2label[a["category_id"]] for a in anns], np.int64)}
        if self.with_masks:
            results["masks"] = np.stack([_decode(a, h, w) for a in anns]) if anns else \
                np.zeros((0, h, w), np.uint8)
        return results

    def __getitem__(self, index: int) -> Any:
        return self.pipeline(self.load(index))


def _decode(ann: dict[str, Any], h: int, w: int) -> np.ndarray:
    """(h, w) uint8 mask of a polygon / RLE / uncompressed-RLE segmentation (box if none)."""
    from pycocotools import mask as mask_utils

    seg = ann.get("segmentation")
    if not seg:
        m = np.zeros((h, w), np.uint8)
        x, y, bw, bh = (int(round(v)) for v in ann["bbox"])
        m[max(y, 0):y + bh, max(x, 0):x + bw] = 1
        return m
    if isinstance(seg, list):
        polys = [p for p in seg if len(p) >= 6]
        if not polys:
            return np.zeros((h, w), np.uint8)
        rle = mask_utils.merge(mask_utils.frPyObjects(polys, h, w))
    elif isinstance(seg["counts"], list):
        rle = mask_utils.frPyObjects(seg, h, w)
    else:
        rle = seg
    return mask_utils.decode(rle).astype(np.uint8)
