"""A CPU-sized Mask R-CNN on the tiny ``PE-Test`` backbone, for checking the whole pipeline.

256 x 256 inputs (LSJ at 256, square padding 256), 4 x 4 windows with global blocks 1 and 3, 64
pyramid channels, small RPN/RoI budgets, batch 2, 2 iterations, then COCO evaluation. Datasets
``coco_tiny_train`` / ``coco_tiny_val`` are registered by the tool from a COCO-layout folder:

    python tools/train_detectron2.py --config-file configs/detectron2/mask_rcnn_pe_test_tiny.py \
        --register-coco coco_tiny=../shared/data/coco_tiny train.output_dir=/tmp/pe_d2_tiny
"""

import detectron2.data.transforms as T
from detectron2.config import LazyCall as L
from detectron2.layers import ShapeSpec
from detectron2.solver import WarmupParamScheduler
from fvcore.common.param_scheduler import MultiStepParamScheduler

from .mask_rcnn_pe_spatial_b_coco import dataloader, model, optimizer, train

_SIZE, _CH = 256, 64

model.backbone.net.variant = "PE-Test"
model.backbone.net.image_size = _SIZE
model.backbone.net.pretrain_image_size = 64
model.backbone.net.window_size = 4
model.backbone.net.global_blocks = (1, 3)
model.backbone.net.square_pad = _SIZE
model.backbone.square_pad = _SIZE
model.backbone.out_channels = _CH
model.proposal_generator.head.in_channels = _CH
model.proposal_generator.pre_nms_topk = (400, 200)
model.proposal_generator.post_nms_topk = (200, 100)
model.roi_heads.batch_size_per_image = 64
model.roi_heads.box_head.input_shape = ShapeSpec(channels=_CH, height=7, width=7)
model.roi_heads.box_head.conv_dims = [_CH] * 2
model.roi_heads.box_head.fc_dims = [256]
model.roi_heads.box_predictor.input_shape = ShapeSpec(channels=256)
model.roi_heads.mask_head.input_shape = ShapeSpec(channels=_CH, width=14, height=14)
model.roi_heads.mask_head.conv_dims = [_CH] * 3
# Keep every detection: after 2 iterations all scores are low, and COCO AP needs predictions.
model.roi_heads.box_predictor.test_score_thresh = 0.0

dataloader.train.dataset.names = "coco_tiny_train"
dataloader.train.mapper.augmentations = [
    L(T.RandomFlip)(horizontal=True),
    L(T.ResizeScale)(min_scale=0.5, max_scale=1.5, target_height=_SIZE, target_width=_SIZE),
    L(T.FixedSizeCrop)(crop_size=(_SIZE, _SIZE), pad=False),
]
dataloader.train.total_batch_size = 2
dataloader.train.num_workers = 0
dataloader.test.dataset.names = "coco_tiny_val"
dataloader.test.mapper.augmentations = [
    L(T.ResizeShortestEdge)(short_edge_length=_SIZE, max_size=_SIZE),
]
dataloader.test.num_workers = 0

train.device = "cpu"
train.amp.enabled = False
train.ddp.fp16_compression = False
train.max_iter = 2
train.eval_period = 0
train.log_period = 1
train.checkpointer.period = 1000
train.output_dir = "./output/pe_test_tiny"
optimizer.lr = 1e-4
lr_multiplier = L(WarmupParamScheduler)(
    scheduler=L(MultiStepParamScheduler)(values=[1.0, 0.1], milestones=[1], num_updates=2),
    warmup_length=0.5,
    warmup_factor=0.1,
)

__all__ = ["dataloader", "lr_multiplier", "model", "optimizer", "train"]
