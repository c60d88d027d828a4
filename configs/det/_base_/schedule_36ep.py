# PE-Spatial-G's COCO schedule (official mask_rcnn_PEspatial_G_coco36ep): 36 epochs at batch 64 =
# 66375 iterations, milestones 59000 and 63916, warm-up 250; AdamW lr 5e-5, weight decay 0.1.
_base_ = ["../../_base_/schedule_iter_adamw.py"]
max_iters = 66375
optim_wrapper = dict(optimizer=dict(lr=5e-5, weight_decay=0.1))
train_cfg = dict(max_iters=max_iters, val_interval=10000)
param_scheduler = [
    dict(type="LinearLR", start_factor=0.001, by_epoch=False, begin=0, end=250),
    dict(type="MultiStepLR", by_epoch=False, begin=0, end=max_iters, milestones=[59000, 63916],
         gamma=0.1),
]
