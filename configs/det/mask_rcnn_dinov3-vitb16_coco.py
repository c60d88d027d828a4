# Mask R-CNN + simple feature pyramid on DINOv3 ViT-B/16 (timm) at 1024, COCO, 100 epochs: a
# delta of mask_rcnn_pe_spatial_b_coco.py with another backbone. DINOv3 has no ViTDet windowed
# attention here (global attention in every block: more memory at 1024); layer decay and the
# rest of the recipe are the PE-Spatial-B ones. Weights: timm's hub repository (offline: set
# weights to a local model.safetensors).
_base_ = ["./mask_rcnn_pe_spatial_b_coco.py"]

model = dict(backbone=dict(_delete_=True, name="timm/vit_base_patch16_dinov3", img_size=1024,
                           drop_path=0.1, weights="hf-hub:timm/vit_base_patch16_dinov3.lvd1689m"))
