# PE-Spatial-L14-448 frozen + DINOv2 linear depth probe: BN + 1x1 conv over 256 uniform bins in
# 0.001-10 m ("linear" normalisation), last block with the readout token ("lin. 1"); for
# "lin. 4" set indices=[-4, -3, -2, -1]. SiLog loss, NYUv2, flip test.
# A delta of linear_pe-spatial-b16_nyu.py: only what differs is here.
_base_ = ["./linear_pe-spatial-b16_nyu.py"]

# Patch 14: train crops are multiples of 14 close to 416x544; the collate pads batches to 14.
crop_size = (420, 546)
size_divisor = 14  # the patch size
train_dataloader = dict(dataset=dict(transforms=dict(crop_size=crop_size)),
                        collate_fn=dict(size_divisor=size_divisor))
val_dataloader = dict(collate_fn=dict(size_divisor=size_divisor))
test_dataloader = val_dataloader
model = dict(backbone=dict(name="PE-Spatial-L14-448", weights="hf://facebook/PE-Spatial-L14-448"))
