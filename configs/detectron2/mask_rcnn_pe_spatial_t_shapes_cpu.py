"""The shapes learning check of ``configs/det/mask_rcnn_pe_spatial_t_shapes_cpu.py`` in detectron2:
the same detector, data, schedule and batch, for the side-by-side comparison of
``docs/benchmarks.md`` ("Detection quality side by side with detectron2").

PE-Spatial-T-shaped ``PEViTBackbone`` at 256 px with global attention, detectron2's ViTDet
Mask R-CNN (``common/models/mask_rcnn_vitdet.py``: LN simple feature pyramid, 2-conv RPN head,
4-conv + 1-fc box head, 4-conv mask head, ROIAlignV2, L1 box losses) narrowed to 64 channels,
anchors 16-256, RPN 1000/500 proposals, 128 RoIs per image, 3 classes. AdamW 3e-4, weight decay
0.05 (none on norms, biases and position embeddings), 100 warm-up iterations, x0.1 at 875, 1000
iterations at batch 4 with horizontal flip; COCO evaluation every 250 iterations. Masks are
bitmaps (as pe_dense's targets). Same backbone initialisation as the pe_dense run: a file from
``tools/random_backbone.py``::

    python tools/make_shapes_dataset.py work_dirs/shapes256
    python tools/random_backbone.py PE-Spatial-T16-512 work_dirs/shapes256/init_pe_t.pt \
        --image-size 256 --seed 0
    python tools/train_detectron2.py \
        --config-file configs/detectron2/mask_rcnn_pe_spatial_t_shapes_cpu.py \
        --register-coco shapes=work_dirs/shapes256 \
        train.init_checkpoint=work_dirs/shapes256/init_pe_t.pt train.output_dir=work_dirs/d2_shapes
"""

import detectron2.data.transforms as T
from detectron2.config import LazyCall as L
from detectron2.evaluation import COCOEvaluator
from detectron2.layers import ShapeSpec
from detectron2.solver import WarmupParamScheduler
from fvcore.common.param_scheduler import MultiStepParamScheduler

from .mask_rcnn_pe_spatial_b_coco import dataloader, model, optimizer, train

_SIZE, _CH, _ITERS = 256, 64, 1000

model.backbone.net.variant = "PE-Spatial-T16-512"
model.backbone.net.image_size = _SIZE
model.backbone.net.pretrain_image_size = _SIZE
model.backbone.net.window_size = 0
model.backbone.net.global_blocks = ()
model.backbone.net.posemb_mode = "interpolate"
model.backbone.net.rope_mode = "extrapolate"
model.backbone.net.drop_path = 0.0
model.backbone.net.square_pad = _SIZE
model.backbone.square_pad = _SIZE
model.backbone.out_channels = _CH
model.proposal_generator.anchor_generator.sizes = [[16], [32], [64], [128], [256]]
model.proposal_generator.head.in_channels = _CH
model.proposal_generator.pre_nms_topk = (1000, 1000)
model.proposal_generator.post_nms_topk = (500, 500)
model.roi_heads.num_classes = 3
model.roi_heads.batch_size_per_image = 128
model.roi_heads.box_head.input_shape = ShapeSpec(channels=_CH, height=7, width=7)
model.roi_heads.box_head.conv_dims = [_CH] * 4
model.roi_heads.box_head.fc_dims = [512]
model.roi_heads.box_predictor.input_shape = ShapeSpec(channels=512)
model.roi_heads.box_predictor.num_classes = 3
model.roi_heads.mask_head.input_shape = ShapeSpec(channels=_CH, width=14, height=14)
model.roi_heads.mask_head.conv_dims = [_CH] * 5   # 4 convs and the upsampling deconv
model.roi_heads.mask_head.num_classes = 3

dataloader.train.dataset.names = "shapes_train"
dataloader.train.mapper.augmentations = [L(T.RandomFlip)(horizontal=True)]
dataloader.train.mapper.recompute_boxes = False
dataloader.train.mapper.instance_mask_format = "bitmask"
dataloader.train.total_batch_size = 4
dataloader.train.num_workers = 0
dataloader.test.dataset.names = "shapes_val"
dataloader.test.mapper.augmentations = []
dataloader.test.num_workers = 0
dataloader.evaluator = L(COCOEvaluator)(dataset_name="shapes_val")

train.device = "cpu"
train.amp.enabled = False
train.ddp.fp16_compression = False
train.max_iter = _ITERS
train.eval_period = 250
train.log_period = 20
train.checkpointer.period = 250
train.seed = 0
train.output_dir = "./work_dirs/d2_shapes"

optimizer.lr = 3e-4
optimizer.weight_decay = 0.05
optimizer.params.lr_factor_func = None
optimizer.params.weight_decay_bias = 0.0
optimizer.params.overrides = {"positional_embedding": {"weight_decay": 0.0},
                              "class_embedding": {"weight_decay": 0.0}}
lr_multiplier = L(WarmupParamScheduler)(
    scheduler=L(MultiStepParamScheduler)(values=[1.0, 0.1], milestones=[875],
                                         num_updates=_ITERS),
    warmup_length=100 / _ITERS,
    warmup_factor=0.001,
)

__all__ = ["dataloader", "lr_multiplier", "model", "optimizer", "train"]
