# Mask R-CNN + simple feature pyramid on PE-Spatial-G14-448 (windowed at 1024), COCO, 36 epochs.
# Backbone at 1024: patch 16, position grid 32x32 tiled, window 32 (PE's "abswin"), RoPE
# positions interpolated, global attention at blocks 12, 24, 36, 49; drop path 0.5; lr decay 0.9.
# Official recipe: perception_models mask_rcnn_PEspatial_G_coco36ep (57.8 box / 50.3 mask AP).
# Weights: the patch-14 kernel must be resampled to 16 first (as the official code does):
#   pe-dense convert hf://facebook/PE-Spatial-G14-448 checkpoints/PE-Spatial-G14-448-p16.pth \
#       --to detectron2 --patch-size 16
# Memory: set model.backbone.grad_checkpointing=True (the official config checkpoints).
_base_ = [
    "./_base_/mask_rcnn_pe.py",
    "./_base_/coco_lsj.py",
    "./_base_/schedule_36ep.py",
    "../_base_/default_runtime.py",
]
model = dict(
    backbone=dict(
        name="PE-Spatial-G14-448",
        weights="checkpoints/PE-Spatial-G14-448-p16.pth",
        image_size=1024,
        patch_size=16,
        pretrain_image_size=512,
        window_size=32,
        global_blocks=(12, 24, 36, 49),
        posemb_mode="tile",
        rope_mode="interpolate",
        drop_path=0.5,
        grad_checkpointing=True,
    ),
)
optim_wrapper = dict(paramwise_cfg=dict(layer_decay=0.9))
