# mmseg ViT + UPerNet fine-tuning schedule: AdamW lr 1e-4 wd 0.05 with layer-wise lr decay
# (0.65, as mmseg's MAE config), linear warm-up 1500 iterations, poly decay to 160k.
optim_wrapper = dict(
    constructor="LayerDecayOptimWrapperConstructor",
    optimizer=dict(type="AdamW", lr=1e-4, betas=(0.9, 0.999), weight_decay=0.05),
    paramwise_cfg=dict(layer_decay=0.65),
)
max_iters = 160000
train_cfg = dict(type="IterBasedTrainLoop", max_iters=max_iters, val_interval=16000)
val_cfg = dict(type="ValLoop")
test_cfg = dict(type="TestLoop")
param_scheduler = [
    dict(type="LinearLR", start_factor=1e-6, by_epoch=False, begin=0, end=1500),
    dict(type="PolyLR", power=1.0, eta_min=0.0, by_epoch=False, begin=1500, end=max_iters),
]
