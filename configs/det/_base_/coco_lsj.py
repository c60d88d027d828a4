# COCO 2017 instances with large-scale jitter at 1024 (ViTDet): flip, scale 0.1-2.0, crop 1024,
# square padding to 1024 in the collate. Test: long side 1024. Batch 64 in total (4 x 16 GPUs):
# set batch_size to 64 / number of GPUs.
data_root = "data/coco/"
image_size = 1024
train_dataloader = dict(
    batch_size=4, num_workers=4, persistent_workers=True,
    sampler=dict(type="InfiniteSampler", shuffle=True),
    collate_fn=dict(type="pe_dense.detection_collate", square_size=image_size),
    dataset=dict(type="CocoDetection", ann_file=data_root + "annotations/instances_train2017.json",
                 img_dir=data_root + "train2017", filter_empty=True,
                 pipeline=[dict(type="RandomFlip", prob=0.5),
                           dict(type="LargeScaleJitter", size=image_size, min_scale=0.1,
                                max_scale=2.0),
                           dict(type="PackDetInputs")]),
)
val_dataloader = dict(
    batch_size=1, num_workers=2, persistent_workers=True, drop_last=False,
    sampler=dict(type="DefaultSampler", shuffle=False),
    collate_fn=dict(type="pe_dense.detection_collate", square_size=image_size),
    dataset=dict(type="CocoDetection", ann_file=data_root + "annotations/instances_val2017.json",
                 img_dir=data_root + "val2017", test_mode=True,
                 pipeline=[dict(type="ResizeLongestSide", size=image_size),
                           dict(type="PackDetInputs")]),
)
test_dataloader = val_dataloader
val_evaluator = dict(type="CocoMetric", ann_file=data_root + "annotations/instances_val2017.json",
                     metric=("bbox", "segm"))
test_evaluator = val_evaluator
