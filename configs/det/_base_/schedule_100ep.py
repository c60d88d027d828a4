# ViTDet's COCO schedule: 100 epochs at batch 64 = 184375 iterations, warm-up 250, lr x0.1 at
# 163889 and 177546. AdamW lr 1e-4, weight decay 0.1 (none on norms, biases, position embedding).
_base_ = ["../../_base_/schedule_iter_adamw.py"]
max_iters = 184375
optim_wrapper = dict(optimizer=dict(lr=1e-4, weight_decay=0.1))
train_cfg = dict(max_iters=max_iters, val_interval=10000)
param_scheduler = [
    dict(type="LinearLR", start_factor=0.001, by_epoch=False, begin=0, end=250),
    dict(type="MultiStepLR", by_epoch=False, begin=0, end=max_iters, milestones=[163889, 177546],
         gamma=0.1),
]
