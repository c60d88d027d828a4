# PE-Spatial-T16-512 + multi-layer pyramid + UPerNet, fine-tuned end to end on ADE20K at 512
# (mmseg's ViT-UPerNet protocol: 160k iterations, batch 16, layer decay 0.65, slide 512/341).
_base_ = ["../_base_/default_runtime.py", "./_base_/ade20k.py",
          "./_base_/schedule_upernet_160k.py"]

size_divisor = 32  # the pyramid's coarsest stride (p5)
train_dataloader = dict(collate_fn=dict(size_divisor=size_divisor))
val_dataloader = dict(collate_fn=dict(size_divisor=size_divisor))
test_dataloader = val_dataloader
model = dict(
    type="Segmentor",
    backbone=dict(name="PE-Spatial-T16-512", weights="hf://facebook/PE-Spatial-T16-512",
                  drop_path=0.1),
    neck=dict(type="MultiLayerPyramid", indices=(2, 5, 8, 11), out_channels=768,
              freeze_backbone=False),
    head=dict(type="UPerHead", channels=512, dropout=0.1),
    freeze_backbone=False,
    num_classes=150,
    ignore_index=255,
    test_scale=(2048, 512),
    inference=dict(mode="slide", crop_size=(512, 512), stride=(341, 341)),
)
default_hooks = dict(checkpoint=dict(interval=16000))
