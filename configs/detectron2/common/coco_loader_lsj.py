"""COCO loaders with large-scale jitter (LSJ), the ViTDet / PE detection data recipe.

Train: horizontal flip, resize by a random factor in [0.1, 2.0] of a 1024 x 1024 target, crop to at
most 1024 x 1024 (boxes recomputed from masks); batch 64 in total. Test: longer side 1024. The
square 1024 padding is done by the backbone's ``square_pad``, not here.
"""

import detectron2.data.transforms as T
from detectron2 import model_zoo
from detectron2.config import LazyCall as L

_SIZE = 1024

dataloader = model_zoo.get_config("common/data/coco.py").dataloader
dataloader.train.mapper.augmentations = [
    L(T.RandomFlip)(horizontal=True),
    L(T.ResizeScale)(min_scale=0.1, max_scale=2.0, target_height=_SIZE, target_width=_SIZE),
    L(T.FixedSizeCrop)(crop_size=(_SIZE, _SIZE), pad=False),
]
dataloader.train.mapper.image_format = "RGB"
dataloader.train.mapper.recompute_boxes = True
dataloader.train.total_batch_size = 64
dataloader.test.mapper.augmentations = [
    L(T.ResizeShortestEdge)(short_edge_length=_SIZE, max_size=_SIZE),
]
