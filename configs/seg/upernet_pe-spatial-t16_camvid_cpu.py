# PE-Spatial-T16 + multi-layer pyramid + UPerNet, fine-tuned on 20 CamVid frames
# (CPU, 80 iterations), evaluated on the other 10.
# Without `model.backbone.weights` the backbone starts from random weights (no hub access);
# pass --cfg-options model.backbone.weights=hf://facebook/PE-Spatial-T16-512 when online.
_base_ = ["../_base_/default_runtime.py", "./_base_/camvid_cpu.py"]

model = dict(
    type="Segmentor",
    backbone=dict(name="PE-Spatial-T16-512", weights=None),
    neck=dict(type="MultiLayerPyramid", indices=(2, 5, 8, 11), out_channels=96),
    head=dict(type="UPerHead", channels=96, dropout=0.1),
    freeze_backbone=False,
    num_classes={{_base_.num_classes}},
    ignore_index={{_base_.ignore_index}},
    class_names={{_base_.class_names}},
    inference=dict(mode="whole"),
)
optim_wrapper = dict(
    constructor="LayerDecayOptimWrapperConstructor",
    optimizer=dict(type="AdamW", lr=1e-3, weight_decay=0.05, betas=(0.9, 0.999)),
    paramwise_cfg=dict(layer_decay=1.0),
    clip_grad=dict(max_norm=1.0),
)
max_iters = 80
train_cfg = dict(type="IterBasedTrainLoop", max_iters=max_iters, val_interval=40)
val_cfg = dict(type="ValLoop")
test_cfg = dict(type="TestLoop")
param_scheduler = [
    dict(type="LinearLR", start_factor=1e-3, by_epoch=False, begin=0, end=5),
    dict(type="PolyLR", power=1.0, eta_min=0.0, by_epoch=False, begin=5, end=max_iters),
]
default_hooks = dict(logger=dict(interval=5), checkpoint=dict(interval=40, max_keep_ckpts=2))
