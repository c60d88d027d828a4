# The paper in miniature, text prompts with a learned bridge: the stage-1 PE-Mini vision tower
# (frozen) and its own stage-1 text tower; a small patch adapter and text bridge trained on the
# world's shape masks (COCO instances, shapes as classes + a learned background). Compared in
# tools/paper_in_miniature.py with the training-free recipes (maskclip, selfself) on the same
# model. tools/paper_in_miniature.py writes a copy with the run's paths (the names below); by hand:
#   pe-dense train configs/paper_mini/bridge_pe-mini_world.py
#   pe-dense segment-text IMAGES --bridge work_dirs/bridge_pe-mini_world/bridge.pth \
#       --text-weights work_dirs/paper_mini/stage1/clip.pt --eval-labels LABELS --out DIR
_base_ = ["../_base_/default_runtime.py"]
world = "work_dirs/paper_mini/world/"
stage1 = "work_dirs/paper_mini/stage1/clip.pt"
class_names = ["background", "circle", "square", "triangle", "star"]
num_classes = len(class_names)
ignore_index = 255
size = 96

model = dict(
    type="BridgeSegmenter",
    backbone=dict(name="PE-Mini", weights=stage1),
    prompts=class_names[1:],
    text=dict(name="PE-Mini", weights=stage1, templates="none"),
    indices=[-1],
    patch_adapter="mlp",
    hidden=128,
    freeze_backbone=True,
    ignore_index=ignore_index,
)
_dataset = dict(type="CocoSemanticDataset", ignore_index=ignore_index)
_collate = dict(type="pe_dense.seg_collate", ignore_index=ignore_index, size_divisor=8)
train_dataloader = dict(
    batch_size=16, num_workers=0,
    sampler=dict(type="InfiniteSampler", shuffle=True),
    collate_fn=_collate,
    dataset=dict(**_dataset, ann_file=world + "train/instances.json",
                 img_dir=world + "train/images",
                 transforms=dict(train=True, crop_size=(size, size), scale=(size, size),
                                 ratio_range=(1.0, 1.0), photometric=False)),
)
val_dataloader = dict(
    batch_size=16, num_workers=0,
    sampler=dict(type="DefaultSampler", shuffle=False),
    collate_fn=_collate,
    dataset=dict(**_dataset, ann_file=world + "val/instances.json", img_dir=world + "val/images"),
)
test_dataloader = val_dataloader
val_evaluator = dict(type="SegIoUMetric", num_classes=num_classes, ignore_index=ignore_index,
                     class_names=class_names)
test_evaluator = val_evaluator

max_iters = 600
optim_wrapper = dict(optimizer=dict(type="AdamW", lr=2e-3, weight_decay=0.01),
                     clip_grad=dict(max_norm=1.0))
warmup = max(1, min(30, max_iters // 10))  # iterations of linear warm-up
param_scheduler = [
    dict(type="LinearLR", start_factor=0.01, by_epoch=False, begin=0, end=warmup),
    dict(type="CosineAnnealingLR", eta_min=1e-5, by_epoch=False, begin=warmup, end=max_iters),
]
train_cfg = dict(type="IterBasedTrainLoop", max_iters=max_iters, val_interval=300)
val_cfg = dict(type="ValLoop")
test_cfg = dict(type="TestLoop")
default_hooks = dict(logger=dict(interval=50),
                     checkpoint=dict(interval=300, max_keep_ckpts=1))
custom_hooks = [dict(type="SaveBridgeHook")]
