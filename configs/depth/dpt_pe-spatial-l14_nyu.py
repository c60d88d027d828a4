# PE-Spatial-L14-448 frozen + DPT head (Depth Anything widths for this size, four
# blocks per variant, readout projection), SiLog loss, NYUv2 0.001-10 m, flip test.
_base_ = ["../_base_/default_runtime.py", "./_base_/nyu.py",
          "./_base_/schedule_nyu_38k.py"]
# Patch 14: train crops are multiples of 14 close to 416x544; the collate pads batches to 14.
crop_size = (420, 546)
size_divisor = 14  # the patch size
train_dataloader = dict(dataset=dict(transforms=dict(crop_size=crop_size)),
                        collate_fn=dict(size_divisor=size_divisor))
val_dataloader = dict(collate_fn=dict(size_divisor=size_divisor))
test_dataloader = val_dataloader

model = dict(
    type="DepthEstimator",
    backbone=dict(name="PE-Spatial-L14-448", weights="hf://facebook/PE-Spatial-L14-448"),
    head=dict(type="DPTHead", readout="project", activation="sigmoid"),
    freeze_backbone=True,
    min_depth={{_base_.min_depth}},
    max_depth={{_base_.max_depth}},
    loss=dict(variance_focus=0.15, gradient_weight=0.0),
    flip_test=True,
)
default_hooks = dict(checkpoint=dict(interval=3200))
