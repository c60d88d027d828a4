# PE-Spatial-T16-512 frozen + DINOv2 linear depth probe: BN + 1x1 conv over 256 uniform bins in
# 0.001-10 m ("linear" normalisation), last block with the readout token ("lin. 1"); for
# "lin. 4" set indices=[-4, -3, -2, -1]. SiLog loss, NYUv2, flip test.
# A delta of linear_pe-spatial-b16_nyu.py: only what differs is here.
_base_ = ["./linear_pe-spatial-b16_nyu.py"]

model = dict(backbone=dict(name="PE-Spatial-T16-512", weights="hf://facebook/PE-Spatial-T16-512"))
