# Mask R-CNN + simple feature pyramid on PE-Spatial-L14-448 (windowed at 1024), COCO, 100 epochs.
# Backbone: the ViTDet preset of the variant (pe_dense.backbone.variants.VITDET_PRESETS:
# 1024 px, patch 16, tiled 32x32 position grid, 32x32 windows, global blocks, drop path,
# lr decay).
# Weights: the patch-14 kernel must be resampled to 16 first (as the official code does):
#   pe-dense convert hf://facebook/PE-Spatial-L14-448 checkpoints/PE-Spatial-L14-448-p16.pth \
#       --to detectron2 --patch-size 16
_base_ = [
    "./_base_/mask_rcnn_pe.py",
    "./_base_/coco_lsj.py",
    "./_base_/schedule_100ep.py",
    "../_base_/default_runtime.py",
]

from pe_dense.backbone.variants import vitdet_backbone, vitdet_preset  # noqa: E402

model = dict(
    backbone=vitdet_backbone("PE-Spatial-L14-448",
                             weights="checkpoints/PE-Spatial-L14-448-p16.pth"),
)
optim_wrapper = dict(
    paramwise_cfg=dict(layer_decay=vitdet_preset("PE-Spatial-L14-448").layer_decay),
)
