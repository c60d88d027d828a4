# PE-Spatial-G14 frozen, the paper's linear + conv probe on one block (the paper's best is
# block 49 of 50 = -2, 49.3 mIoU; the last block gives 48.9), images resized to 518.
_base_ = ["../_base_/default_runtime.py", "./_base_/ade20k.py",
          "./_base_/schedule_linear_40k.py"]

crop_size = (518, 518)
size_divisor = 14  # the patch size
train_dataloader = dict(dataset=dict(transforms=dict(crop_size=crop_size, scale=(2072, 518))),
                        collate_fn=dict(size_divisor=size_divisor))
val_dataloader = dict(collate_fn=dict(size_divisor=size_divisor))
test_dataloader = val_dataloader
model = dict(
    type="Segmentor",
    backbone=dict(name="PE-Spatial-G14-448", weights="hf://facebook/PE-Spatial-G14-448"),
    head=dict(type="LinearConvHead", channels=1536, dropout=0.0),
    indices=[-2],
    freeze_backbone=True,
    num_classes=150,
    ignore_index=255,
    test_scale=(2072, 518),
    inference=dict(mode="slide", crop_size=(518, 518), stride=(341, 341)),
)
default_hooks = dict(checkpoint=dict(interval=10000))
