# PE-Spatial-T16 + DPT, fine-tuned end to end on the 10 nyu_mini frames at 120x160:
# the CPU check that the depth stack learns (overfits; AbsRel on the same frames).
# Without `model.backbone.weights` the backbone starts from random weights (no hub access).
_base_ = ["../_base_/default_runtime.py", "./_base_/nyu_mini.py"]

model = dict(
    type="DepthEstimator",
    backbone=dict(name="PE-Spatial-T16-512", weights=None),
    head=dict(type="DPTHead", readout="project", activation="sigmoid"),
    freeze_backbone=False,
    min_depth={{_base_.min_depth}},
    max_depth={{_base_.max_depth}},
    loss=dict(variance_focus=0.15),
    input_scale=0.25,
)
max_iters = 150
optim_wrapper = dict(
    constructor="LayerDecayOptimWrapperConstructor",
    optimizer=dict(type="AdamW", lr=5e-4, betas=(0.9, 0.99), weight_decay=1e-4),
    paramwise_cfg=dict(layer_decay=1.0),
    clip_grad=dict(max_norm=35.0),
)
train_cfg = dict(type="IterBasedTrainLoop", max_iters=max_iters, val_interval=25)
val_cfg = dict(type="ValLoop")
test_cfg = dict(type="TestLoop")
param_scheduler = [
    dict(type="LinearLR", start_factor=0.01, by_epoch=False, begin=0, end=10),
    dict(type="CosineAnnealingLR", eta_min=1e-5, by_epoch=False, begin=10, end=max_iters),
]
default_hooks = dict(logger=dict(interval=5), checkpoint=dict(interval=50, max_keep_ckpts=2))
