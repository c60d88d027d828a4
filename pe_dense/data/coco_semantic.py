"""Semantic label maps from COCO-format instances (config type ``"CocoSemanticDataset"``).

Each image's instance masks are painted into one (H, W) label map: 0 = background, ``i + 1``
for the i-th category (COCO ids in order), later instances over earlier ones; crowd regions
become ``ignore_index``. With ``boxes_only`` the boxes are painted instead of the masks (weak
supervision from detection data). Items are the same dicts as
:class:`pe_dense.data.segmentation.SegFolderDataset`'s, so ``seg_collate`` and the mIoU metric
apply unchanged; ``classes`` is ``("background", *category names)``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from pe_dense.data.coco import CocoDetection
from pe_dense.data.segmentation import LabelMapDataset, Pair

__all__ = ["CocoSemanticDataset"]


class CocoSemanticDataset(LabelMapDataset):
    """``ann_file`` / ``img_dir`` as for :class:`CocoDetection`; ``transforms``: a callable on
    (image, label) or :func:`build_seg_transforms` keyword arguments; ``max_images``: the first
    N images; ``boxes_only``: paint boxes instead of masks."""

    def __init__(self, ann_file: str, img_dir: str, *, ignore_index: int = 255,
                 transforms: Callable[[np.ndarray, np.ndarray], Pair] | dict | None = None,
                 max_images: int | None = None, boxes_only: bool = False) -> None:
        self.coco = CocoDetection(ann_file, img_dir, pipeline=[], with_masks=not boxes_only,
                                  max_images=max_images)
        self.ignore_index, self.boxes_only = ignore_index, boxes_only
        self.classes = ("background", *self.coco.metainfo["classes"])
        self._set_transforms(transforms)

    def __len__(self) -> int:
        return len(self.coco)

    def load(self, index: int) -> Pair:
        """The raw (image (H, W, 3) uint8, label (H, W) int64) pair."""
        results: dict[str, Any] = self.coco.load(index)
        image = results["image"]
        label = np.zeros(image.shape[:2], np.int64)
        for i, cls in enumerate(results["labels"]):
            if self.boxes_only:
                x0, y0, x1, y1 = (int(round(v)) for v in results["boxes"][i])
                label[y0:y1, x0:x1] = cls + 1
            else:
                label[results["masks"][i] > 0] = cls + 1
        img = self.coco.images[index]
        for ann in img["anns"]:
            if ann.get("iscrowd", 0):
                x, y, w, h = (int(round(v)) for v in ann["bbox"])
                label[max(y, 0):y + h, max(x, 0):x + w] = self.ignore_index
        return image, label

    def path_of(self, index: int) -> str:
        return str(self.coco.img_dir / self.coco.images[index]["file_name"])
