# PE-Spatial-G14-448 frozen + DPT head (Depth Anything widths for this size, four
# blocks per variant, readout projection), SiLog loss, NYUv2 0.001-10 m, flip test.
# A delta of dpt_pe-spatial-b16_nyu.py: only what differs is here.
_base_ = ["./dpt_pe-spatial-b16_nyu.py"]

# Patch 14: train crops are multiples of 14 close to 416x544; the collate pads batches to 14.
crop_size = (420, 546)
size_divisor = 14  # the patch size
train_dataloader = dict(dataset=dict(transforms=dict(crop_size=crop_size)),
                        collate_fn=dict(size_divisor=size_divisor))
val_dataloader = dict(collate_fn=dict(size_divisor=size_divisor))
test_dataloader = val_dataloader
model = dict(backbone=dict(name="PE-Spatial-G14-448", weights="hf://facebook/PE-Spatial-G14-448"))
