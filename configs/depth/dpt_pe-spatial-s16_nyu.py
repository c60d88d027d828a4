# PE-Spatial-S16-512 frozen + DPT head (Depth Anything widths for this size, four
# blocks per variant, readout projection), SiLog loss, NYUv2 0.001-10 m, flip test.
# A delta of dpt_pe-spatial-b16_nyu.py: only what differs is here.
_base_ = ["./dpt_pe-spatial-b16_nyu.py"]

model = dict(backbone=dict(name="PE-Spatial-S16-512", weights="hf://facebook/PE-Spatial-S16-512"))
