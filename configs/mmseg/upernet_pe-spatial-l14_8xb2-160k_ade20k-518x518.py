# UPerNet + PE-Spatial-L14-448 on ADE20K, 160k iterations on 8 GPUs x 2 images. Patch 14: the
# "512" protocol runs at 518 = 37 x 14 (crops, test short side and slide windows) so every map
# covers the image exactly. Blocks 5, 11, 17, 23 feed the neck.
_base_ = [
    "_base_/models/upernet_pe.py",
    "_base_/datasets/ade20k_518.py",
    "_base_/default_runtime.py",
    "_base_/schedules/schedule_160k_adamw.py",
]
crop_size = (518, 518)
data_preprocessor = dict(size=crop_size)
model = dict(
    data_preprocessor=data_preprocessor,
    backbone=dict(variant="PE-Spatial-L14-448", out_indices=(5, 11, 17, 23), drop_path=0.2),
    neck=dict(in_channels=[1024] * 4, out_channels=1024),
    decode_head=dict(in_channels=[1024] * 4),
    auxiliary_head=dict(in_channels=1024),
    test_cfg=dict(mode="slide", crop_size=crop_size, stride=(345, 345)),
)
