# Mask R-CNN + simple feature pyramid on PE-Spatial-B16-512 (windowed at 1024), COCO, 100 epochs.
# Backbone at 1024: patch 16, position grid 32x32 tiled, window 32 (PE's "abswin"), RoPE
# positions interpolated, global attention at blocks 2, 5, 8, 11; drop path 0.1; lr decay 0.7.
# Global blocks / drop path / decay follow ViTDet's recipe for this depth (PE released only G).
# Weights: downloaded from the Hugging Face hub (or set a local path).
_base_ = [
    "./_base_/mask_rcnn_pe.py",
    "./_base_/coco_lsj.py",
    "./_base_/schedule_100ep.py",
    "../_base_/default_runtime.py",
]
model = dict(
    backbone=dict(
        name="PE-Spatial-B16-512",
        weights="hf://facebook/PE-Spatial-B16-512",
        image_size=1024,
        patch_size=16,
        pretrain_image_size=512,
        window_size=32,
        global_blocks=(2, 5, 8, 11),
        posemb_mode="tile",
        rope_mode="interpolate",
        drop_path=0.1,
    ),
)
optim_wrapper = dict(paramwise_cfg=dict(layer_decay=0.7))
