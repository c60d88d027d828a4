"""Mask R-CNN, PE-Spatial-B16-512 backbone, COCO, 36 epochs (scaled recipe, not official).

PE publishes a detection recipe for G only. This one keeps PE's data, schedule and "abswin"
backbone settings (tiled 32 x 32 position grid, 32 x 32 windows) and takes the depth-dependent
values from ViTDet-B: global attention at blocks 2, 5, 8, 11, drop path 0.1, AdamW lr 1e-4,
layer decay 0.7, no weight decay on norms and position embeddings.

    python tools/train_detectron2.py --num-gpus 8 \
        --config-file configs/detectron2/mask_rcnn_pe_spatial_b_coco.py \
        train.init_checkpoint=/path/to/PE-Spatial-B16-512.pt
"""

from detectron2.config import LazyCall as L

from pe_dense.integrations.detectron2 import PEViTBackbone, vitdet_lr_factor, vitdet_net

from .common.mask_rcnn_pe_vitdet import dataloader, lr_multiplier, model, optimizer, train

model.backbone.net = L(PEViTBackbone)(**vitdet_net("PE-Spatial-B16-512"))

optimizer.lr = 1e-4
optimizer.params.lr_factor_func = vitdet_lr_factor("PE-Spatial-B16-512")
optimizer.params.overrides = {
    "positional_embedding": {"weight_decay": 0.0},
    "class_embedding": {"weight_decay": 0.0},
}

__all__ = ["dataloader", "lr_multiplier", "model", "optimizer", "train"]
