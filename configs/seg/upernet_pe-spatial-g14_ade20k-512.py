# PE-Spatial-G14-448 + multi-layer pyramid + UPerNet, fine-tuned end to end on ADE20K at 512
# (mmseg's ViT-UPerNet protocol: 160k iterations, batch 16, layer decay 0.65, slide 512/341).
# The pyramid needs power-of-two strides: patch-14 weights are resampled to patch 16 by
# `pe-dense convert --to detectron2 --patch-size 16`; its 32x32 position grid is the
# grid of a 512-pixel patch-16 model (pretrain_image_size=512).
# A delta of upernet_pe-spatial-b16_ade20k-512.py: only what differs is here.
_base_ = ["./upernet_pe-spatial-b16_ade20k-512.py"]

model = dict(
    backbone=dict(name="PE-Spatial-G14-448", patch_size=16, pretrain_image_size=512,
                  weights="checkpoints/PE-Spatial-G14-448-patch16.pt", drop_path=0.4),
    neck=dict(indices=(12, 24, 36, 49)),
)
