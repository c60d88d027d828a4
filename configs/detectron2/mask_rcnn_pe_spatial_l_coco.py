"""Mask R-CNN, PE-Spatial-L14-448 backbone, COCO, 36 epochs (scaled recipe, not official).

PE publishes a detection recipe for G only. This one keeps PE's data, schedule and "abswin"
backbone settings (patch 16 from the resampled 14x14 kernel, tiled 32 x 32 position grid,
32 x 32 windows) and takes the depth-dependent values from ViTDet-L: global attention at blocks
5, 11, 17, 23, drop path 0.4, AdamW lr 1e-4, layer decay 0.8, no weight decay on norms and
position embeddings.

    python tools/train_detectron2.py --num-gpus 8 \
        --config-file configs/detectron2/mask_rcnn_pe_spatial_l_coco.py \
        train.init_checkpoint=/path/to/PE-Spatial-L14-448.pt
"""

from detectron2.config import LazyCall as L

from pe_dense.integrations.detectron2 import PEViTBackbone, vitdet_lr_factor, vitdet_net

from .common.mask_rcnn_pe_vitdet import dataloader, lr_multiplier, model, optimizer, train

model.backbone.net = L(PEViTBackbone)(**vitdet_net("PE-Spatial-L14-448", grad_checkpointing=True))

optimizer.lr = 1e-4
optimizer.params.lr_factor_func = vitdet_lr_factor("PE-Spatial-L14-448")
optimizer.params.overrides = {
    "positional_embedding": {"weight_decay": 0.0},
    "class_embedding": {"weight_decay": 0.0},
}

__all__ = ["dataloader", "lr_multiplier", "model", "optimizer", "train"]
