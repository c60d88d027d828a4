# Linear probe of a frozen PE-Spatial-B16-512 on ADE20K (dense_protocols.md 2.4, DINOv2 protocol):
# last block, BatchNorm + 1x1 conv, 512 x 512 crops, 40k iterations, 8 GPUs x 2 images, slide
# inference 512 / 341. PE reports 44.4 mIoU for this model. Set the PE checkpoint:
#   --cfg-options model.backbone.weights=/path/to/PE-Spatial-B16-512.pt
_base_ = [
    "_base_/models/linear_pe.py",
    "_base_/datasets/ade20k_512.py",
    "_base_/default_runtime.py",
    "_base_/schedules/schedule_40k_linear.py",
]
crop_size = (512, 512)
data_preprocessor = dict(size=crop_size)
model = dict(data_preprocessor=data_preprocessor)
