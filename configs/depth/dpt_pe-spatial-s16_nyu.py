# PE-Spatial-S16-512 frozen + DPT head (Depth Anything widths for this size, four
# blocks per variant, readout projection), SiLog loss, NYUv2 0.001-10 m, flip test.
_base_ = ["../_base_/default_runtime.py", "./_base_/nyu.py",
          "./_base_/schedule_nyu_38k.py"]

model = dict(
    type="DepthEstimator",
    backbone=dict(name="PE-Spatial-S16-512", weights="hf://facebook/PE-Spatial-S16-512"),
    head=dict(type="DPTHead", readout="project", activation="sigmoid"),
    freeze_backbone=True,
    min_depth={{_base_.min_depth}},
    max_depth={{_base_.max_depth}},
    loss=dict(variance_focus=0.15, gradient_weight=0.0),
    flip_test=True,
)
default_hooks = dict(checkpoint=dict(interval=3200))
