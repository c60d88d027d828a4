# Linear probe of a frozen PE-Spatial-L14-448 on ADE20K (dense_protocols.md 2.4): last block,
# BatchNorm + 1x1 conv, 40k iterations, 8 GPUs x 2 images, at 518 = 37 x 14 (patch 14), slide
# inference 518 / 345. PE reports 48.1 mIoU for this model. Set the PE checkpoint:
#   --cfg-options model.backbone.weights=/path/to/PE-Spatial-L14-448.pt
_base_ = [
    "_base_/models/linear_pe.py",
    "_base_/datasets/ade20k_518.py",
    "_base_/default_runtime.py",
    "_base_/schedules/schedule_40k_linear.py",
]
crop_size = (518, 518)
data_preprocessor = dict(size=crop_size)
model = dict(
    data_preprocessor=data_preprocessor,
    backbone=dict(variant="PE-Spatial-L14-448"),
    decode_head=dict(in_channels=[1024], channels=1024),
    test_cfg=dict(mode="slide", crop_size=crop_size, stride=(345, 345)),
)
