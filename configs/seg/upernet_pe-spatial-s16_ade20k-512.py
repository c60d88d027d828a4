# PE-Spatial-S16-512 + multi-layer pyramid + UPerNet, fine-tuned end to end on ADE20K at 512
# (mmseg's ViT-UPerNet protocol: 160k iterations, batch 16, layer decay 0.65, slide 512/341).
# A delta of upernet_pe-spatial-b16_ade20k-512.py: only what differs is here.
_base_ = ["./upernet_pe-spatial-b16_ade20k-512.py"]

model = dict(backbone=dict(name="PE-Spatial-S16-512", weights="hf://facebook/PE-Spatial-S16-512"))
