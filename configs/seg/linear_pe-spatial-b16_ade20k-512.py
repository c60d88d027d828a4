# PE-Spatial-B16-512 frozen, linear probe (BN + 1x1 conv) on the last block, ADE20K, DINOv2 protocol
# (40k iterations, batch 16, slide inference 512/341). PE reports 44.4 mIoU for this model.
# Last-4 concat: indices=[-4, -3, -2, -1] (the head's in_channels follow).
_base_ = ["../_base_/default_runtime.py", "./_base_/ade20k.py",
          "./_base_/schedule_linear_40k.py"]

crop_size = (512, 512)
train_dataloader = dict(dataset=dict(transforms=dict(crop_size=crop_size)))
model = dict(
    type="Segmentor",
    backbone=dict(name="PE-Spatial-B16-512", weights="hf://facebook/PE-Spatial-B16-512"),
    head=dict(type="LinearHead", dropout=0.0),
    indices=[-1],
    freeze_backbone=True,
    num_classes=150,
    ignore_index=255,
    test_scale=(2048, 512),
    inference=dict(mode="slide", crop_size=(512, 512), stride=(341, 341)),
)
default_hooks = dict(checkpoint=dict(interval=10000))
