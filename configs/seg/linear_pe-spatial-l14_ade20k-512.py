# PE-Spatial-L14-448 frozen, linear probe (BN + 1x1 conv) on the last block, ADE20K, DINOv2 protocol
# (40k iterations, batch 16, slide inference 512/341). PE reports 48.1 mIoU for this model.
# Last-4 concat: indices=[-4, -3, -2, -1] (the head's in_channels follow).
# A delta of linear_pe-spatial-b16_ade20k-512.py: only what differs is here.
_base_ = ["./linear_pe-spatial-b16_ade20k-512.py"]

crop_size = (518, 518)
size_divisor = 14  # the patch size
train_dataloader = dict(dataset=dict(transforms=dict(crop_size=crop_size)),
                        collate_fn=dict(size_divisor=size_divisor))
val_dataloader = dict(collate_fn=dict(size_divisor=size_divisor))
test_dataloader = val_dataloader
model = dict(backbone=dict(name="PE-Spatial-L14-448", weights="hf://facebook/PE-Spatial-L14-448"),
             inference=dict(crop_size=(518, 518)))
