# End-to-end smoke run on real COCO images (../shared/data/coco_tiny: 32 train / 6 val images):
# the tiny PE-Test backbone, LSJ at 256 px, 2 iterations, then COCO evaluation. Runs on a CPU.
#   pe-dense train configs/det/mask_rcnn_pe_test_coco_tiny.py
_base_ = ["./_base_/mask_rcnn_pe.py", "../_base_/schedule_iter_adamw.py",
          "../_base_/default_runtime.py"]
data_root = "../shared/data/coco_tiny/"
image_size = 256
model = dict(
    backbone=dict(name="PE-Test", weights=None, image_size=image_size, window_size=4,
                  global_blocks=(1, 3), posemb_mode="tile", rope_mode="interpolate",
                  pretrain_image_size=64),
    pyramid=dict(out_channels=32),
    box_head=dict(conv_dims=(32, 32), fc_dims=(64,)),
    mask_head=dict(conv_dims=(32, 32)),
    rpn=dict(pre_nms_top_n=dict(training=200, testing=200),
             post_nms_top_n=dict(training=100, testing=100)),
    roi=dict(batch_size_per_image=64),
)
train_dataloader = dict(
    batch_size=2, num_workers=0,
    sampler=dict(type="InfiniteSampler", shuffle=True),
    collate_fn=dict(type="pe_dense.detection_collate", square_size=image_size),
    dataset=dict(type="CocoDetection", ann_file=data_root + "annotations/instances_train2017.json",
                 img_dir=data_root + "images/train2017", filter_empty=True,
                 pipeline=[dict(type="RandomFlip", prob=0.5),
                           dict(type="LargeScaleJitter", size=image_size, min_scale=0.1,
                                max_scale=2.0),
                           dict(type="PackDetInputs")]),
)
val_dataloader = dict(
    batch_size=2, num_workers=0, drop_last=False,
    sampler=dict(type="DefaultSampler", shuffle=False),
    collate_fn=dict(type="pe_dense.detection_collate", square_size=image_size),
    dataset=dict(type="CocoDetection", ann_file=data_root + "annotations/instances_val2017.json",
                 img_dir=data_root + "images/val2017", test_mode=True,
                 pipeline=[dict(type="ResizeLongestSide", size=image_size),
                           dict(type="PackDetInputs")]),
)
test_dataloader = val_dataloader
val_evaluator = dict(type="CocoMetric", ann_file=data_root + "annotations/instances_val2017.json",
                     metric=("bbox", "segm"))
test_evaluator = val_evaluator
optim_wrapper = dict(optimizer=dict(lr=1e-4), clip_grad=dict(max_norm=1.0))
train_cfg = dict(max_iters=2, val_interval=2)
param_scheduler = [dict(type="LinearLR", start_factor=0.1, by_epoch=False, begin=0, end=2)]
default_hooks = dict(logger=dict(interval=1), checkpoint=dict(interval=2))
