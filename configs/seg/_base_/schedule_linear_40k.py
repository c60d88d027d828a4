# DINOv2 linear-probe schedule: frozen backbone, AdamW lr 1e-3 wd 1e-4, linear warm-up 1500
# iterations, poly decay (power 1) to 0 at 40k iterations, evaluation every 10k.
optim_wrapper = dict(
    constructor="LayerDecayOptimWrapperConstructor",
    optimizer=dict(type="AdamW", lr=1e-3, betas=(0.9, 0.999), weight_decay=1e-4),
    paramwise_cfg=dict(layer_decay=1.0),
)
max_iters = 40000
train_cfg = dict(type="IterBasedTrainLoop", max_iters=max_iters, val_interval=10000)
val_cfg = dict(type="ValLoop")
test_cfg = dict(type="TestLoop")
param_scheduler = [
    dict(type="LinearLR", start_factor=1e-6, by_epoch=False, begin=0, end=1500),
    dict(type="PolyLR", power=1.0, eta_min=0.0, by_epoch=False, begin=1500, end=max_iters),
]
