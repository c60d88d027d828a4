# Learning check of the text-to-patch bridge on CPU (docs/benchmarks.md): synthetic shapes,
# prompts "circle", "square", "triangle" + a learned background; a frozen *random* PE-Test text
# tower (seeded, so segment-text rebuilds the same one) and a from-scratch PE-Test vision tower
# (patch 8: shapes of 16-56 px need a finer grid than 8 x 8) trained with the bridge
# (freeze_backbone=False; real runs freeze a pretrained PE-Spatial, see
# bridge_pe-spatial-b16_coco.py). The "blocks" patch adapter (three residual 3x3 conv blocks,
# 128 wide, on the 16 x 16 grid) is what tells the shapes apart: with the one-layer "conv"
# adapter the tower stopped at val mIoU 0.49 (4000 iterations); with "blocks" this config
# reached 0.878 in 1500 iterations, 15.6 min on one shared core (docs/benchmarks.md). Data:
#   python tools/make_shapes_dataset.py work_dirs/shapes128 --size 128 --train 400 --val 50
# Run (from the repository root):
#   OMP_NUM_THREADS=1 pe-dense train configs/open_vocab/bridge_pe-test_shapes_cpu.py
# then: pe-dense segment-text IMAGE --bridge work_dirs/bridge_pe-test_shapes_cpu/bridge.pth
_base_ = ["../_base_/default_runtime.py"]
data_root = "work_dirs/shapes128/"
class_names = ["background", "circle", "square", "triangle"]
num_classes = len(class_names)
ignore_index = 255
size_divisor = 8

model = dict(
    type="BridgeSegmenter",
    backbone=dict(name="PE-Test", image_size=128, patch_size=8),  # a 16 x 16 grid at 128 px
    prompts=class_names[1:],
    text=dict(name="PE-Test", weights=None, seed=0, templates="none",
              cache="work_dirs/text_cache_pe-test.pt"),
    indices=[-1],
    patch_adapter="blocks",
    adapter_depth=3,
    hidden=128,
    freeze_backbone=False,
    ignore_index=ignore_index,
)
_dataset = dict(type="CocoSemanticDataset", ignore_index=ignore_index)
train_dataloader = dict(
    batch_size=8,
    num_workers=0,
    sampler=dict(type="InfiniteSampler", shuffle=True),
    collate_fn=dict(type="pe_dense.seg_collate", ignore_index=ignore_index,
                    size_divisor=size_divisor),
    dataset=dict(**_dataset, ann_file=data_root + "annotations/instances_train.json",
                 img_dir=data_root + "train",
                 transforms=dict(train=True, crop_size=(128, 128), scale=(128, 128),
                                 ratio_range=(0.75, 1.5), photometric=False)),
)
val_dataloader = dict(
    batch_size=8,
    num_workers=0,
    sampler=dict(type="DefaultSampler", shuffle=False),
    collate_fn=dict(type="pe_dense.seg_collate", ignore_index=ignore_index,
                    size_divisor=size_divisor),
    dataset=dict(**_dataset, ann_file=data_root + "annotations/instances_val.json",
                 img_dir=data_root + "val"),
)
test_dataloader = val_dataloader
val_evaluator = dict(type="SegIoUMetric", num_classes=num_classes, ignore_index=ignore_index,
                     class_names=class_names)
test_evaluator = val_evaluator

max_iters = 1500
optim_wrapper = dict(optimizer=dict(type="AdamW", lr=1e-3, weight_decay=0.01),
                     clip_grad=dict(max_norm=1.0))
param_scheduler = [
    dict(type="LinearLR", start_factor=0.01, by_epoch=False, begin=0, end=50),
    dict(type="CosineAnnealingLR", eta_min=1e-5, by_epoch=False, begin=50, end=max_iters),
]
train_cfg = dict(type="IterBasedTrainLoop", max_iters=max_iters, val_interval=250)
val_cfg = dict(type="ValLoop")
test_cfg = dict(type="TestLoop")
default_hooks = dict(logger=dict(interval=25),
                     checkpoint=dict(interval=500, max_keep_ckpts=1))
custom_hooks = [dict(type="SaveBridgeHook")]
