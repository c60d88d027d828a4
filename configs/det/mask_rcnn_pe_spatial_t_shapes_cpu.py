# Learning check on the synthetic shapes set, from scratch on a 2-core CPU (docs/benchmarks.md,
# "Detection quality side by side with detectron2"). A PE-Spatial-T-shaped backbone (random
# init, 256 px, global attention), a 64-channel LN simple feature pyramid, Mask R-CNN with
# ViTDet's heads (4 convs + LN, 1 fc), anchors 16-256, RPN 1000/500 proposals, 128 RoIs per
# image; AdamW 3e-4 (no layer decay), 100 warm-up iterations, batch 4, flip, 1000 iterations
# (lr x0.1 at 875), COCO evaluation every 250.
# configs/detectron2/mask_rcnn_pe_spatial_t_shapes_cpu.py is the same detector in detectron2.
#   python tools/make_shapes_dataset.py work_dirs/shapes256
#   pe-dense train configs/det/mask_rcnn_pe_spatial_t_shapes_cpu.py
_base_ = ["../_base_/schedule_iter_adamw.py", "../_base_/default_runtime.py"]
data_root = "work_dirs/shapes256/"
image_size = 256
channels = 64
max_iters = 1000
val_interval = 250

model = dict(
    type="MaskRCNN",
    backbone=dict(name="PE-Spatial-T16-512", weights=None, image_size=image_size),
    pyramid=dict(type="SimpleFeaturePyramid", out_channels=channels, norm="LN"),
    num_classes=3,
    anchor_sizes=((16,), (32,), (64,), (128,), (256,)),
    rpn=dict(pre_nms_top_n=dict(training=1000, testing=1000),
             post_nms_top_n=dict(training=500, testing=500)),
    roi=dict(batch_size_per_image=128),
    box_head=dict(conv_dims=(channels,) * 4, fc_dims=(512,), norm="LN"),
    mask_head=dict(conv_dims=(channels,) * 4, norm="LN"),
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

# detectron2's AdamW for ViTDet: no weight decay on norms, biases and position embeddings, no
# gradient clipping; from scratch, so no layer-wise decay.
optim_wrapper = dict(
    optimizer=dict(lr=3e-4, weight_decay=0.05),
    paramwise_cfg=dict(layer_decay=1.0),
)
train_cfg = dict(max_iters=max_iters, val_interval=val_interval)
param_scheduler = [
    dict(type="LinearLR", start_factor=0.001, by_epoch=False, begin=0, end=100),
    dict(type="MultiStepLR", by_epoch=False, begin=0, end=max_iters, milestones=[875],
         gamma=0.1),
]
default_hooks = dict(logger=dict(interval=20),
                     checkpoint=dict(interval=val_interval, max_keep_ckpts=2))
