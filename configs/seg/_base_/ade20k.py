# ADE20K (ADEChallengeData2016): 150 classes, reduce_zero_label, mmseg's standard pipeline:
# random resize of the (2048, 512) box by 0.5-2.0, random crop with cat_max_ratio 0.75, flip,
# photometric distortion; evaluation on the original images (the model resizes to test_scale).
data_root = "data/ade/ADEChallengeData2016"
num_classes = 150
ignore_index = 255
crop_size = (512, 512)
# The collate pads every batch once to a multiple of the model's size divisor: the patch size
# for probes (16; 14 for L14/G14), the coarsest pyramid stride (32) for UPerNet. Configs with
# another divisor set size_divisor and pass it to the three dataloaders' collate_fn.
size_divisor = 16
# BatchNorm in the heads sees the whole batch under torchrun (DINOv2 uses SyncBN).
sync_bn = "torch"

train_dataloader = dict(
    batch_size=2,  # per GPU; the reference protocols use 8 GPUs (batch 16)
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type="InfiniteSampler", shuffle=True),
    collate_fn=dict(type="pe_dense.seg_collate", ignore_index=ignore_index,
                    size_divisor=size_divisor),
    dataset=dict(type="ADE20KDataset", root=data_root, split="training",
                 transforms=dict(train=True, crop_size=crop_size, scale=(2048, 512),
                                 ratio_range=(0.5, 2.0), cat_max_ratio=0.75)),
)
val_dataloader = dict(
    batch_size=1,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type="DefaultSampler", shuffle=False),
    collate_fn=dict(type="pe_dense.seg_collate", ignore_index=ignore_index,
                    size_divisor=size_divisor),
    dataset=dict(type="ADE20KDataset", root=data_root, split="validation"),
)
test_dataloader = val_dataloader
val_evaluator = dict(type="SegIoUMetric", num_classes=num_classes, ignore_index=ignore_index)
test_evaluator = val_evaluator
