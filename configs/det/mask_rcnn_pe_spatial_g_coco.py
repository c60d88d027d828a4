# Mask R-CNN + simple feature pyramid on PE-Spatial-G14-448 (windowed at 1024), COCO, 36 epochs.
# Backbone: the ViTDet preset of the variant (pe_dense.backbone.variants.VITDET_PRESETS:
# 1024 px, patch 16, tiled 32x32 position grid, 32x32 windows, global blocks, drop path,
# lr decay).
# Official recipe: perception_models mask_rcnn_PEspatial_G_coco36ep (57.8 box / 50.3 mask AP).
# Weights: the patch-14 kernel must be resampled to 16 first (as the official code does):
#   pe-dense convert hf://facebook/PE-Spatial-G14-448 checkpoints/PE-Spatial-G14-448-p16.pth \
#       --to detectron2 --patch-size 16
# Memory: the G preset checkpoints activations (grad_checkpointing=True), as the official
# config does.
_base_ = [
    "./_base_/mask_rcnn_pe.py",
    "./_base_/coco_lsj.py",
    "./_base_/schedule_36ep.py",
    "../_base_/default_runtime.py",
]

from pe_dense.backbone.variants import vitdet_backbone, vitdet_preset  # noqa: E402

model = dict(
    backbone=vitdet_backbone("PE-Spatial-G14-448",
                             weights="checkpoints/PE-Spatial-G14-448-p16.pth"),
)
optim_wrapper = dict(
    paramwise_cfg=dict(layer_decay=vitdet_preset("PE-Spatial-G14-448").layer_decay),
)
