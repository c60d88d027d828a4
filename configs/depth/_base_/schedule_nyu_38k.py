# DINOv2/DINOv3 NYU depth-probe schedule: AdamW lr 3e-4, betas (0.9, 0.99), wd 1e-4, gradient
# clipping 35, one-cycle lr with 12,800 warm-up iterations and final division 1000, 38,400
# iterations at batch 16.
max_iters = 38400
optim_wrapper = dict(
    constructor="LayerDecayOptimWrapperConstructor",
    optimizer=dict(type="AdamW", lr=3e-4, betas=(0.9, 0.99), weight_decay=1e-4),
    paramwise_cfg=dict(layer_decay=1.0),
    clip_grad=dict(max_norm=35.0),
)
train_cfg = dict(type="IterBasedTrainLoop", max_iters=max_iters, val_interval=3200)
val_cfg = dict(type="ValLoop")
test_cfg = dict(type="TestLoop")
param_scheduler = [
    dict(type="OneCycleLR", eta_max=3e-4, total_steps=max_iters, pct_start=12800 / max_iters,
         final_div_factor=1000, by_epoch=False),
]
