# DINOv2 ViT-B/14 with registers (timm) frozen + DPT head (ViT-B widths), NYUv2: a delta of
# dpt_pe-spatial-b16_nyu.py with another backbone (patch 14: crops and padding in multiples of
# 14). Weights: timm's hub repository (offline: set weights to a local model.safetensors).
_base_ = ["./dpt_pe-spatial-b16_nyu.py"]

crop_size = (420, 546)
size_divisor = 14  # the patch size
train_dataloader = dict(dataset=dict(transforms=dict(crop_size=crop_size)),
                        collate_fn=dict(size_divisor=size_divisor))
val_dataloader = dict(collate_fn=dict(size_divisor=size_divisor))
test_dataloader = val_dataloader
model = dict(backbone=dict(_delete_=True, name="timm/vit_base_patch14_reg4_dinov2",
                           weights="hf-hub:timm/vit_base_patch14_reg4_dinov2.lvd142m"))
