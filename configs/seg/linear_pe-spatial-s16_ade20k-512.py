# PE-Spatial-S16-512 frozen, linear probe (BN + 1x1 conv) on the last block, ADE20K, DINOv2 protocol
# (40k iterations, batch 16, slide inference 512/341). PE reports 37.5 mIoU for this model.
# Last-4 concat: indices=[-4, -3, -2, -1] (the head's in_channels follow).
# A delta of linear_pe-spatial-b16_ade20k-512.py: only what differs is here.
_base_ = ["./linear_pe-spatial-b16_ade20k-512.py"]

model = dict(backbone=dict(name="PE-Spatial-S16-512", weights="hf://facebook/PE-Spatial-S16-512"))
