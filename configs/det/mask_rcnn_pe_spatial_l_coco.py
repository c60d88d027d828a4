# Mask R-CNN + simple feature pyramid on PE-Spatial-L14-448 (windowed at 1024), COCO, 100 epochs.
# Backbone at 1024: patch 16, position grid 32x32 tiled, window 32 (PE's "abswin"), RoPE
# positions interpolated, global attention at blocks 5, 11, 17, 23; drop path 0.4; lr decay 0.8.
# Global blocks / drop path / decay follow ViTDet's recipe for this depth (PE released only G).
# Weights: the patch-14 kernel must be resampled to 16 first (as the official code does):
#   pe-dense convert hf://facebook/PE-Spatial-L14-448 checkpoints/PE-Spatial-L14-448-p16.pth \
#       --to detectron2 --patch-size 16
_base_ = [
    "./_base_/mask_rcnn_pe.py",
    "./_base_/coco_lsj.py",
    "./_base_/schedule_100ep.py",
    "../_base_/default_runtime.py",
]
model = dict(
    backbone=dict(
        name="PE-Spatial-L14-448",
        weights="checkpoints/PE-Spatial-L14-448-p16.pth",
        image_size=1024,
        patch_size=16,
        pretrain_image_size=512,
        window_size=32,
        global_blocks=(5, 11, 17, 23),
        posemb_mode="tile",
        rope_mode="interpolate",
        drop_path=0.4,
    ),
)
optim_wrapper = dict(paramwise_cfg=dict(layer_decay=0.8))
