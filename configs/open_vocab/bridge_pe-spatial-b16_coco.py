# Text-to-PE-Spatial bridge on COCO (Talk2DINO / dino.txt style): frozen PE-Spatial-B16-512
# patch features (last block) and a frozen PE-Core-B16-224 text tower (its embeddings cached);
# trained: the text->patch MLP, a 1x1 patch adapter and a background vector, with pixel
# cross-entropy on COCO instance masks painted as 80 classes + background.
# Data: data/coco/annotations/instances_{train,val}2017.json, data/coco/{train,val}2017/.
# Weights: the hub files (or set local paths with --cfg-options).
# Run: pe-dense train configs/open_vocab/bridge_pe-spatial-b16_coco.py
# then: pe-dense segment-text IMG --model PE-Spatial-B16-512 --weights PE-Spatial-B16-512.pt \
#           --bridge work_dirs/bridge_pe-spatial-b16_coco/bridge.pth --prompts "person,dog"
# Not run here (no weights, no GPU); the CPU learning check is bridge_pe-test_shapes_cpu.py.
_base_ = ["../_base_/default_runtime.py"]
data_root = "data/coco/"
ignore_index = 255
size_divisor = 16
crop = (512, 512)

from pe_dense.data.coco import COCO_CLASSES  # noqa: E402

num_classes = len(COCO_CLASSES) + 1

model = dict(
    type="BridgeSegmenter",
    backbone=dict(name="PE-Spatial-B16-512", weights="hf://facebook/PE-Spatial-B16-512"),
    prompts=list(COCO_CLASSES),
    text=dict(name="PE-Core-B16-224", weights="hf://facebook/PE-Core-B16-224",
              templates="imagenet", cache="work_dirs/text_cache_pe-core-b16.pt"),
    indices=[-1],
    patch_adapter="linear",
    hidden=512,
    freeze_backbone=True,
    ignore_index=ignore_index,
)
_dataset = dict(type="CocoSemanticDataset", ignore_index=ignore_index)
_collate = dict(type="pe_dense.seg_collate", ignore_index=ignore_index, size_divisor=size_divisor)
train_dataloader = dict(
    batch_size=16,
    num_workers=8,
    sampler=dict(type="InfiniteSampler", shuffle=True),
    collate_fn=_collate,
    dataset=dict(**_dataset, ann_file=data_root + "annotations/instances_train2017.json",
                 img_dir=data_root + "train2017",
                 transforms=dict(train=True, crop_size=crop, scale=(2048, 512),
                                 ratio_range=(0.5, 2.0))),
)
val_dataloader = dict(
    batch_size=1,
    num_workers=4,
    sampler=dict(type="DefaultSampler", shuffle=False),
    collate_fn=_collate,
    dataset=dict(**_dataset, ann_file=data_root + "annotations/instances_val2017.json",
                 img_dir=data_root + "val2017",
                 transforms=dict(train=False, scale=(2048, 512))),
)
test_dataloader = val_dataloader
val_evaluator = dict(type="SegIoUMetric", num_classes=num_classes, ignore_index=ignore_index,
                     class_names=("background", *COCO_CLASSES))
test_evaluator = val_evaluator

max_iters = 20000
optim_wrapper = dict(optimizer=dict(type="AdamW", lr=1e-4, weight_decay=0.01),
                     clip_grad=dict(max_norm=1.0))
param_scheduler = [
    dict(type="LinearLR", start_factor=0.01, by_epoch=False, begin=0, end=500),
    dict(type="CosineAnnealingLR", eta_min=1e-6, by_epoch=False, begin=500, end=max_iters),
]
train_cfg = dict(type="IterBasedTrainLoop", max_iters=max_iters, val_interval=5000)
val_cfg = dict(type="ValLoop")
test_cfg = dict(type="TestLoop")
default_hooks = dict(checkpoint=dict(interval=5000, max_keep_ckpts=2))
custom_hooks = [dict(type="SaveBridgeHook")]
