# Mask R-CNN + simple feature pyramid on PE-Spatial-T16-512 (windowed at 1024), COCO, 100 epochs.
# Backbone: the ViTDet preset of the variant (pe_dense.backbone.variants.VITDET_PRESETS:
# 1024 px, patch 16, tiled 32x32 position grid, 32x32 windows, global blocks, drop path,
# lr decay).
# Weights: downloaded from the Hugging Face hub (or set a local path).
_base_ = [
    "./_base_/mask_rcnn_pe.py",
    "./_base_/coco_lsj.py",
    "./_base_/schedule_100ep.py",
    "../_base_/default_runtime.py",
]

from pe_dense.backbone.variants import vitdet_backbone, vitdet_preset  # noqa: E402

model = dict(
    backbone=vitdet_backbone("PE-Spatial-T16-512", weights="hf://facebook/PE-Spatial-T16-512"),
)
optim_wrapper = dict(
    paramwise_cfg=dict(layer_decay=vitdet_preset("PE-Spatial-T16-512").layer_decay),
)
