# Overfitting check of the whole COCO path on real images (docs/benchmarks.md): train on the 32
# training images of ../shared/data/coco_tiny and evaluate on the same images, so a working
# pipeline (category-id mapping, box format, rescaling to original sizes, crowd handling) must
# drive bbox AP well above 0.5. The tiny from-scratch PE-Test backbone (4 blocks, width 64,
# global attention) at 256 px, 64-channel LN pyramid, 1-conv RPN head, ViTDet box/mask heads
# 64 wide, 64 RoIs per image, no augmentation, AdamW 3e-4, batch 4, 700 iterations (lr x0.1 at
# 600), evaluation at 350 and 700: bbox AP passes 0.5 in about 13 minutes on 2 CPU cores.
#   pe-dense train configs/det/mask_rcnn_pe_test_coco_tiny_overfit.py
_base_ = ["./_base_/mask_rcnn_pe.py", "../_base_/schedule_iter_adamw.py",
          "../_base_/default_runtime.py"]
data_root = "../shared/data/coco_tiny/"
image_size = 256
channels = 64
max_iters = 700
val_interval = 350
_ann = data_root + "annotations/instances_train2017.json"
_images = data_root + "images/train2017"

model = dict(
    backbone=dict(name="PE-Test", weights=None, image_size=image_size),
    pyramid=dict(out_channels=channels),
    anchor_sizes=((16,), (32,), (64,), (128,), (256,)),
    rpn=dict(conv_depth=1, pre_nms_top_n=dict(training=1000, testing=1000),
             post_nms_top_n=dict(training=500, testing=500)),
    roi=dict(batch_size_per_image=64),
    box_head=dict(conv_dims=(channels,) * 4, fc_dims=(512,)),
    mask_head=dict(conv_dims=(channels,) * 4),
)
_test_pipeline = [dict(type="ResizeLongestSide", size=image_size), dict(type="PackDetInputs")]
train_dataloader = dict(
    batch_size=4, num_workers=0,
    sampler=dict(type="InfiniteSampler", shuffle=True),
    collate_fn=dict(type="pe_dense.detection_collate", square_size=image_size),
    dataset=dict(type="CocoDetection", ann_file=_ann, img_dir=_images, filter_empty=True,
                 pipeline=_test_pipeline),
)
val_dataloader = dict(
    batch_size=4, num_workers=0, drop_last=False,
    sampler=dict(type="DefaultSampler", shuffle=False),
    collate_fn=dict(type="pe_dense.detection_collate", square_size=image_size),
    dataset=dict(type="CocoDetection", ann_file=_ann, img_dir=_images, test_mode=True,
                 pipeline=_test_pipeline),
)
test_dataloader = val_dataloader
val_evaluator = dict(type="CocoMetric", ann_file=_ann, metric=("bbox", "segm"))
test_evaluator = val_evaluator

optim_wrapper = dict(optimizer=dict(lr=3e-4, weight_decay=0.05),
                     paramwise_cfg=dict(layer_decay=1.0))
train_cfg = dict(max_iters=max_iters, val_interval=val_interval)
param_scheduler = [
    dict(type="LinearLR", start_factor=0.001, by_epoch=False, begin=0, end=50),
    dict(type="MultiStepLR", by_epoch=False, begin=0, end=max_iters, milestones=[600],
         gamma=0.1),
]
default_hooks = dict(logger=dict(interval=20),
                     checkpoint=dict(interval=val_interval, max_keep_ckpts=1))
