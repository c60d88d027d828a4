# CPU smoke configuration: UPerNet on the tiny PE-Test backbone, CamVid (11 classes, 11 = void)
# from a folder with images/*.png and labels/*.png, 128 x 128 crops, 2 iterations, batch 2, then
# evaluation on 4 images. Point data_root at the sample data:
#   --cfg-options train_dataloader.dataset.data_root=../shared/data/camvid_val \
#                 val_dataloader.dataset.data_root=../shared/data/camvid_val
_base_ = [
    "_base_/models/upernet_pe.py",
    "_base_/default_runtime.py",
]
crop_size = (128, 128)
norm_cfg = dict(type="BN", requires_grad=True)
model = dict(
    data_preprocessor=dict(size=crop_size, seg_pad_val=11),
    backbone=dict(variant="PE-Test", out_indices=(0, 1, 2, 3), drop_path=0.0),
    neck=dict(in_channels=[64] * 4, out_channels=64),
    decode_head=dict(in_channels=[64] * 4, channels=64, num_classes=11, ignore_index=11,
                     norm_cfg=norm_cfg),
    auxiliary_head=dict(in_channels=64, channels=32, num_classes=11, ignore_index=11,
                        norm_cfg=norm_cfg),
    test_cfg=dict(mode="whole"),
)
env_cfg = dict(dist_cfg=dict(backend="gloo"), cudnn_benchmark=False)
metainfo = dict(classes=("sky", "building", "pole", "road", "pavement", "tree", "sign",
                         "fence", "car", "pedestrian", "bicyclist"))
data_root = "../shared/data/camvid_val"
train_pipeline = [
    dict(type="LoadImageFromFile"),
    dict(type="LoadAnnotations"),
    dict(type="RandomResize", scale=(240, 180), ratio_range=(0.75, 1.25), keep_ratio=True),
    dict(type="RandomCrop", crop_size=crop_size),
    dict(type="RandomFlip", prob=0.5),
    dict(type="PackSegInputs"),
]
test_pipeline = [
    dict(type="LoadImageFromFile"),
    dict(type="Resize", scale=(240, 176), keep_ratio=False),
    dict(type="LoadAnnotations"),
    dict(type="PackSegInputs"),
]
_dataset = dict(type="BaseSegDataset", data_root=data_root, metainfo=metainfo,
                img_suffix=".png", seg_map_suffix=".png", ignore_index=11,
                data_prefix=dict(img_path="images", seg_map_path="labels"))
train_dataloader = dict(batch_size=2, num_workers=0, sampler=dict(type="InfiniteSampler"),
                        dataset=dict(**_dataset, pipeline=train_pipeline))
val_dataloader = dict(batch_size=1, num_workers=0, sampler=dict(type="DefaultSampler",
                                                                shuffle=False),
                      dataset=dict(**_dataset, pipeline=test_pipeline, indices=4))
test_dataloader = val_dataloader
val_evaluator = dict(type="IoUMetric", iou_metrics=["mIoU"], ignore_index=11)
test_evaluator = val_evaluator
optim_wrapper = dict(type="OptimWrapper",
                     optimizer=dict(type="AdamW", lr=1e-4, weight_decay=0.01))
param_scheduler = []
train_cfg = dict(type="IterBasedTrainLoop", max_iters=2, val_interval=2)
val_cfg = dict(type="ValLoop")
test_cfg = dict(type="TestLoop")
default_hooks = dict(
    timer=dict(type="IterTimerHook"),
    logger=dict(type="LoggerHook", interval=1, log_metric_by_epoch=False),
    param_scheduler=dict(type="ParamSchedulerHook"),
    checkpoint=dict(type="CheckpointHook", by_epoch=False, interval=2),
    sampler_seed=dict(type="DistSamplerSeedHook"),
)
