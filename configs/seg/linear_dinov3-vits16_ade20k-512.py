# DINOv3 ViT-S/16 (timm) frozen, linear probe on the last block, ADE20K, the same protocol as the
# PE-Spatial probes: a delta of linear_pe-spatial-b16_ade20k-512.py with another backbone. The
# backbone normalises with its own (ImageNet) statistics. Weights: timm's hub repository (offline:
# download model.safetensors elsewhere and set weights to its local path).
_base_ = ["./linear_pe-spatial-b16_ade20k-512.py"]

model = dict(backbone=dict(_delete_=True, name="timm/vit_small_patch16_dinov3",
                           weights="hf-hub:timm/vit_small_patch16_dinov3.lvd1689m"))
