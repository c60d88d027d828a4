# CamVid-style folder data (../shared/data/camvid_val: 30 frames of one drive, 11 classes,
# label 11 = void) split into the first 20 frames for training and the last 10 for evaluation.
# Paths are relative to the repository root (run pe-dense from there).
data_root = "../shared/data/camvid_val"
num_classes = 11
ignore_index = 11
class_names = ["sky", "building", "pole", "road", "pavement", "tree", "sign", "fence", "car",
               "pedestrian", "bicyclist"]
crop_size = (256, 256)
# The collate pads every batch once to a multiple of the model's size divisor (the coarsest
# stride of the UPerNet pyramid, p5 = 32; 16, the patch size, for a linear probe).
size_divisor = 32

train_dataloader = dict(
    batch_size=4,
    num_workers=0,
    sampler=dict(type="InfiniteSampler", shuffle=True),
    collate_fn=dict(type="pe_dense.seg_collate", ignore_index=ignore_index,
                    size_divisor=size_divisor),
    dataset=dict(
        type="SegFolderDataset", root=data_root, num_classes=num_classes,
        ignore_index=ignore_index, classes=class_names, subset=(0, 20),
        # 480x360 frames: random scale 0.5-1.0 of the (480, 360) box, then 256x256 crops.
        transforms=dict(train=True, crop_size=crop_size, scale=(480, 360),
                        ratio_range=(0.5, 1.0), cat_max_ratio=0.75)),
)
val_dataloader = dict(
    batch_size=1,
    num_workers=0,
    sampler=dict(type="DefaultSampler", shuffle=False),
    collate_fn=dict(type="pe_dense.seg_collate", ignore_index=ignore_index,
                    size_divisor=size_divisor),
    dataset=dict(type="SegFolderDataset", root=data_root, num_classes=num_classes,
                 ignore_index=ignore_index, classes=class_names, subset=(20, None)),
)
test_dataloader = val_dataloader
val_evaluator = dict(type="SegIoUMetric", num_classes=num_classes, ignore_index=ignore_index,
                     class_names=class_names)
test_evaluator = val_evaluator
