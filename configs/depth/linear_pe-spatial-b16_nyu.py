# PE-Spatial-B16-512 frozen + DINOv2 linear depth probe: BN + 1x1 conv over 256 uniform bins in
# 0.001-10 m ("linear" normalisation), last block with the readout token ("lin. 1"); for
# "lin. 4" set indices=[-4, -3, -2, -1]. SiLog loss, NYUv2, flip test.
_base_ = ["../_base_/default_runtime.py", "./_base_/nyu.py",
          "./_base_/schedule_nyu_38k.py"]

model = dict(
    type="DepthEstimator",
    backbone=dict(name="PE-Spatial-B16-512", weights="hf://facebook/PE-Spatial-B16-512"),
    head=dict(type="LinearBinsHead", n_bins=256, readout=True, upsample=4),
    indices=[-1],
    freeze_backbone=True,
    min_depth={{_base_.min_depth}},
    max_depth={{_base_.max_depth}},
    loss=dict(variance_focus=0.15),
    flip_test=True,
)
default_hooks = dict(checkpoint=dict(interval=3200))
