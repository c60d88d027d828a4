# Learning check on the synthetic shapes dataset, from scratch on a 2-core CPU (see
# docs/benchmarks.md). A PE-Spatial-T-shaped backbone (random init, 128 px, global attention),
# a 64-channel LN simple feature pyramid, Mask R-CNN with ViTDet-style heads (4 conv + LN),
# AdamW 3e-4, warm-up 50, grad clip 1.0, batch 4, flip, 500 iterations: about 4.5 min on 2 free
# cores (bbox AP50 0.53, segm AP50 0.55 measured), much longer on shared ones.
#   python tools/make_shapes_dataset.py work_dirs/shapes128 --size 128
#   pe-dense train configs/det/mask_rcnn_pe_spatial_t_shapes_cpu.py
_base_ = ["../_base_/schedule_iter_adamw.py", "../_base_/default_runtime.py"]
data_root = "work_dirs/shapes128/"
image_size = 128
max_iters = 500

model = dict(
    type="MaskRCNN",
    backbone=dict(name="PE-Spatial-T16-512", weights=None, image_size=image_size),
    pyramid=dict(type="SimpleFeaturePyramid", out_channels=64, norm="LN"),
    num_classes=3,
    anchor_sizes=((16,), (32,), (64,), (128,), (256,)),
    rpn=dict(pre_nms_top_n=dict(training=1000, testing=1000),
             post_nms_top_n=dict(training=500, testing=500)),
    roi=dict(batch_size_per_image=64),
    box_head=dict(conv_dims=(64, 64, 64, 64), fc_dims=(256,), norm="LN"),
    mask_head=dict(conv_dims=(64, 64, 64, 64), norm="LN"),
)
train_dataloader = dict(
    batch_size=4, num_workers=0,
    sampler=dict(type="InfiniteSampler", shuffle=True),
    collate_fn=dict(type="pe_dense.detection_collate", square_size=image_size),
    dataset=dict(type="CocoDetection", ann_file=data_root + "annotations/instances_train.json",
                 img_dir=data_root + "train", filter_empty=True,
                 pipeline=[dict(type="RandomFlip", prob=0.5), dict(type="PackDetInputs")]),
)
val_dataloader = dict(
    batch_size=4, num_workers=0, drop_last=False,
    sampler=dict(type="DefaultSampler", shuffle=False),
    collate_fn=dict(type="pe_dense.detection_collate", square_size=image_size),
    dataset=dict(type="CocoDetection", ann_file=data_root + "annotations/instances_val.json",
                 img_dir=data_root + "val", test_mode=True,
                 pipeline=[dict(type="ResizeLongestSide", size=image_size),
                           dict(type="PackDetInputs")]),
)
test_dataloader = val_dataloader
val_evaluator = dict(type="CocoMetric", ann_file=data_root + "annotations/instances_val.json",
                     metric=("bbox", "segm"))
test_evaluator = val_evaluator

optim_wrapper = dict(
    optimizer=dict(lr=3e-4, weight_decay=0.05),
    paramwise_cfg=dict(layer_decay=1.0),  # from scratch: no layer-wise decay
    clip_grad=dict(max_norm=1.0),
)
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
param_scheduler = [
    dict(type="LinearLR", start_factor=0.001, by_epoch=False, begin=0, end=50),
    dict(type="MultiStepLR", by_epoch=False, begin=0, end=max_iters, milestones=[420],
         gamma=0.1),
]
default_hooks = dict(logger=dict(interval=10), checkpoint=dict(interval=50, max_keep_ckpts=2))
