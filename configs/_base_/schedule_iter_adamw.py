# AdamW with layer-wise lr decay for the PE backbone, linear warm-up then step decay.
# Tasks override max_iters / milestones / lr; layer_decay=None picks the per-variant default.
optim_wrapper = dict(
    constructor="LayerDecayOptimWrapperConstructor",
    optimizer=dict(type="AdamW", lr=1e-4, betas=(0.9, 0.999), weight_decay=0.1),
    paramwise_cfg=dict(layer_decay=None),
)
train_cfg = dict(type="IterBasedTrainLoop", max_iters=10000, val_interval=5000)
val_cfg = dict(type="ValLoop")
test_cfg = dict(type="TestLoop")
param_scheduler = [
    dict(type="LinearLR", start_factor=0.001, by_epoch=False, begin=0, end=250),
    dict(type="MultiStepLR", by_epoch=False, begin=0, end=10000, milestones=[8889, 9630],
         gamma=0.1),
]
