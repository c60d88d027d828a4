# A seconds-long CPU run for tests and the distributed check: PE-Test on 64 px shapes.
#   python tools/make_shapes_dataset.py work_dirs/shapes64 --size 64 --train 16 --val 4
#   torchrun --nproc_per_node 2 tools/train.py configs/det/mask_rcnn_pe_test_shapes_tiny.py \
#       --launcher pytorch
_base_ = ["./mask_rcnn_pe_spatial_t_shapes_cpu.py"]
data_root = "work_dirs/shapes64/"
image_size = 64
model = dict(
    backbone=dict(name="PE-Test", image_size=image_size),
    pyramid=dict(out_channels=16),
    anchor_sizes=((8,), (16,), (32,), (64,), (128,)),
    rpn=dict(pre_nms_top_n=dict(training=100, testing=100),
             post_nms_top_n=dict(training=50, testing=50)),
    roi=dict(batch_size_per_image=16),
    box_head=dict(conv_dims=(16,), fc_dims=(32,)),
    mask_head=dict(conv_dims=(16,)),
)
train_dataloader = dict(
    batch_size=2,
    collate_fn=dict(square_size=image_size),
    dataset=dict(ann_file=data_root + "annotations/instances_train.json",
                 img_dir=data_root + "train"),
)
val_dataloader = dict(
    batch_size=2,
    collate_fn=dict(square_size=image_size),
    dataset=dict(ann_file=data_root + "annotations/instances_val.json", img_dir=data_root + "val",
                 pipeline=[dict(type="ResizeLongestSide", size=image_size),
                           dict(type="PackDetInputs")]),
)
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + "annotations/instances_val.json")
test_evaluator = val_evaluator
train_cfg = dict(max_iters=2, val_interval=2)
param_scheduler = [dict(type="LinearLR", start_factor=0.1, by_epoch=False, begin=0, end=2)]
default_hooks = dict(logger=dict(interval=1), checkpoint=dict(interval=2))
