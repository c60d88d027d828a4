# UPerNet + PE-Spatial-B16-512 on ADE20K, 512 x 512 crops, 160k iterations on 8 GPUs x 2 images.
# Fine-tunes the whole backbone (blocks 2, 5, 8, 11 feed the neck). Set the PE checkpoint:
#   python tools/train.py <this file> \
#       --cfg-options model.backbone.weights=/path/to/PE-Spatial-B16-512.pt   (mmseg's tools)
_base_ = [
    "_base_/models/upernet_pe.py",
    "_base_/datasets/ade20k_512.py",
    "_base_/default_runtime.py",
    "_base_/schedules/schedule_160k_adamw.py",
]
crop_size = (512, 512)
data_preprocessor = dict(size=crop_size)
model = dict(data_preprocessor=data_preprocessor)
