"""Mask R-CNN (ViTDet layout) with a PE backbone: the shared part of the per-size configs.

``model.backbone`` is detectron2's ``SimpleFeaturePyramid`` (p2-p6, 256 channels, LayerNorm) on
``PEViTBackbone``, which is pe_dense's one ``PEViT``: 1024 x 1024 inputs (square padded), patch 16,
the pretrained 32 x 32 position grid tiled ("abswin": ``posemb_mode="tile"`` with 32 x 32 windows),
RoPE positions interpolated to the pretrained grid (``rope_mode="interpolate"``), windowed blocks
except ``global_blocks``. Images are normalised as PE expects, (x - 127) / 127 in RGB, as the
official PE detection configs do.

The backbone options are the variant's ViTDet preset (``pe_dense.backbone.variants.VITDET_PRESETS``
through ``vitdet_net``); the size configs pick the variant, its preset and lr. The
schedule is the official PE-Spatial-G one: 36 COCO epochs at batch 64 (66,375 iterations), steps
at 32 and 34.6 epochs, 250 warm-up iterations.
"""

from detectron2 import model_zoo
from detectron2.config import LazyCall as L
from detectron2.solver import WarmupParamScheduler
from fvcore.common.param_scheduler import MultiStepParamScheduler

from pe_dense.integrations.detectron2 import PEViTBackbone, vitdet_net

from .coco_loader_lsj import dataloader  # noqa: F401  (part of the config)

model = model_zoo.get_config("common/models/mask_rcnn_vitdet.py").model
model.pixel_mean = [127.0, 127.0, 127.0]
model.pixel_std = [127.0, 127.0, 127.0]
model.input_format = "RGB"
model.backbone.net = L(PEViTBackbone)(**vitdet_net("PE-Spatial-B16-512"))
model.backbone.square_pad = 1024

train = model_zoo.get_config("common/train.py").train
train.amp.enabled = True
train.ddp.fp16_compression = True
# Any format pe_dense reads: an official PE .pt (14x14 patch kernels are resampled to 16x16),
# timm / HF weights, `pe-dense convert --to detectron2` output, or a detector checkpoint.
train.init_checkpoint = ""

# ViTDet's 100 epochs are 184,375 iterations at batch 64; PE-Spatial-G trains 36 of them.
train.max_iter = 184375 * 36 // 100
lr_multiplier = L(WarmupParamScheduler)(
    scheduler=L(MultiStepParamScheduler)(
        values=[1.0, 0.1, 0.01],
        milestones=[163889 * 36 // 100, 177546 * 36 // 100],
        num_updates=train.max_iter,
    ),
    warmup_length=250 / train.max_iter,
    warmup_factor=0.001,
)

optimizer = model_zoo.get_config("common/optim.py").AdamW
