# NYUv2 (split-file layout, 16-bit PNG depth in millimetres), 0.001-10 m. Training: NYU border
# crop, rotation +-2.5 deg, flip, random 416x544 crop, colour jitter (the depth toolbox's
# pipeline); evaluation: full 480x640 frames, per-image metrics on the Eigen crop, averaged.
data_root = "data/nyu"
min_depth = 1e-3
max_depth = 10.0
# The collate pads every batch once to a multiple of the model's patch size.
size_divisor = 16
crop_size = (416, 544)
# BatchNorm in the heads sees the whole batch under torchrun (DINOv2 uses SyncBN).
sync_bn = "torch"

train_dataloader = dict(
    batch_size=2,  # per GPU; the reference protocol uses 8 GPUs (batch 16)
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type="InfiniteSampler", shuffle=True),
    collate_fn=dict(type="pe_dense.depth_collate", size_divisor=size_divisor),
    dataset=dict(type="NYUSplitDataset", data_root=f"{data_root}/sync",
                 split_file=f"{data_root}/nyudepthv2_train_files_with_gt.txt",
                 max_depth=max_depth,
                 transforms=dict(train=True, crop_size=crop_size, rotate_degree=2.5)),
)
val_dataloader = dict(
    batch_size=1,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type="DefaultSampler", shuffle=False),
    collate_fn=dict(type="pe_dense.depth_collate", size_divisor=size_divisor),
    dataset=dict(type="NYUSplitDataset", data_root=f"{data_root}/official_splits/test",
                 split_file=f"{data_root}/nyudepthv2_test_files_with_gt.txt",
                 max_depth=max_depth),
)
test_dataloader = val_dataloader
val_evaluator = dict(type="DepthMetric", min_depth=min_depth, max_depth=max_depth,
                     eigen_crop=True)
test_evaluator = val_evaluator
