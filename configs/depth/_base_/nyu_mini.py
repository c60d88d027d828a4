# The 10 real NYUv2 frames of ../shared/data/nyu_mini (image_K.png, 16-bit mm depth_K.png,
# nyu2_mini_test.csv), for the CPU overfitting check: train and evaluate on the same frames,
# at quarter resolution, 120x160 (the prediction is resized back to 480x640 for the metrics).
data_root = "../shared/data/nyu_mini"
min_depth = 1e-3
max_depth = 10.0
# The collate pads every batch once to a multiple of the model's patch size.
size_divisor = 16

train_dataloader = dict(
    batch_size=10,
    num_workers=0,
    sampler=dict(type="InfiniteSampler", shuffle=True),
    collate_fn=dict(type="pe_dense.depth_collate", size_divisor=size_divisor),
    dataset=dict(type="NYUFolderDataset", root=data_root, max_depth=max_depth,
                 transforms=dict(train=True, border_crop=False, rotate_degree=0.0,
                                 color_prob=0.0, flip_prob=0.5, scale=0.25,
                                 crop_size=(120, 160))),
)
val_dataloader = dict(
    batch_size=1,
    num_workers=0,
    sampler=dict(type="DefaultSampler", shuffle=False),
    collate_fn=dict(type="pe_dense.depth_collate", size_divisor=size_divisor),
    dataset=dict(type="NYUFolderDataset", root=data_root, max_depth=max_depth),
)
test_dataloader = val_dataloader
val_evaluator = dict(type="DepthMetric", min_depth=min_depth, max_depth=max_depth,
                     eigen_crop=True)
test_evaluator = val_evaluator
