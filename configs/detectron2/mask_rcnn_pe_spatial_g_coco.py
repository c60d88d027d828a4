"""Mask R-CNN, PE-Spatial-G14-448 backbone, COCO, 36 epochs: the official PE recipe.

Hyper-parameters of perception_models' ``mask_rcnn_PEspatial_G_coco36ep.py``: 50 blocks with
LayerScale, global attention at blocks 12, 24, 36, 49 and 32 x 32 windows elsewhere, patch 16
(the 14x14 kernel resampled), drop path 0.5, AdamW lr 5e-5, weight decay 0.1 on every parameter,
layer-wise lr decay 0.9, activation checkpointing, 36 epochs. Reported: 57.8 box AP / 50.3 mask AP.

    python tools/train_detectron2.py --num-gpus 8 \
        --config-file configs/detectron2/mask_rcnn_pe_spatial_g_coco.py \
        train.init_checkpoint=/path/to/PE-Spatial-G14-448.pt
"""

from detectron2.config import LazyCall as L

from pe_dense.integrations.detectron2 import PEViTBackbone, vitdet_lr_factor, vitdet_net

from .common.mask_rcnn_pe_vitdet import dataloader, lr_multiplier, model, optimizer, train

model.backbone.net = L(PEViTBackbone)(**vitdet_net("PE-Spatial-G14-448"))

optimizer.lr = 5e-5
optimizer.params.lr_factor_func = vitdet_lr_factor("PE-Spatial-G14-448")
optimizer.params.weight_decay_norm = None
optimizer.params.overrides = {}

__all__ = ["dataloader", "lr_multiplier", "model", "optimizer", "train"]
