# The paper in miniature, stage 2 (PE-Spatial in miniature): the distillation trainer, as is,
# aligns a PE-Mini student initialised from the stage-1 CLIP (its vision tower): its last layer
# to the stage-1 model's best intermediate layer (a frozen copy, truncated there), plus a mask
# branch whose teacher answers each point of an 8 x 8 prompt grid with the ground-truth
# instance mask as SAM 2-style logits (kind "gt_masks": a perfect SAM, same interface as the
# SAM 2 teacher). tools/paper_in_miniature.py writes a copy of this file with the run's paths
# sizes and the layer its sweep found (the names below); by hand:
#   pe-dense distill-cache configs/paper_mini/distill_pe-mini_world.py
#   pe-dense distill configs/paper_mini/distill_pe-mini_world.py
_base_ = ["../_base_/default_runtime.py"]
world = "work_dirs/paper_mini/world/"
stage1 = "work_dirs/paper_mini/stage1/clip.pt"
teacher_layer = 3        # 0-based block of the stage-1 model (the sweep's best; see the tool)
cache_dir = "work_dirs/paper_mini/distill_cache"

base_size = 96           # the world's images
crop = 64                # student input (8 x 8 tokens), random crops of the base image
holdout = 20             # every 20th training image is held out for the alignment metrics
batch_size = 64
max_steps = 800
cache = dict(dir=cache_dir, grid=base_size // 8, shard_size=256, batch_size=32)

teachers = [
    dict(name="layer", kind="layer", model="PE-Mini", weights=stage1, layer=teacher_layer,
         project=False, losses=dict(cosine=1.0)),
    dict(name="mask", kind="gt_masks", masks=world + "train/instances", points_per_side=8,
         logit=8.0, losses=dict(locality=1.0), temperature=20.0),
]

model = dict(
    type="DistillModel",
    student=dict(model="PE-Mini", weights=stage1),
    teachers=teachers, crop_size=crop,
    views=dict(scale=(0.5, 1.0), flip=True, jitter=0.2),
    mask=None,
    seed=0,
)

_data = dict(type="DistillImageDataset", roots=[world + "train/images"], image_size=base_size,
             holdout_every=holdout, cache_dir=cache_dir, teachers=teachers, keep_in_memory=True)
train_dataloader = dict(
    batch_size=batch_size, num_workers=0, persistent_workers=False,
    sampler=dict(type="InfiniteSampler", shuffle=True),
    collate_fn=dict(type="default_collate"),
    dataset=dict(**_data, split="train"))
val_dataloader = dict(
    batch_size=64, num_workers=0, persistent_workers=False,
    sampler=dict(type="DefaultSampler", shuffle=False),
    collate_fn=dict(type="default_collate"),
    dataset=dict(**_data, split="val"))
val_evaluator = dict(type="DistillMetric")

train_cfg = dict(type="IterBasedTrainLoop", max_iters=max_steps, val_interval=200)
val_cfg = dict(type="ValLoop")
optim_wrapper = dict(
    optimizer=dict(type="AdamW", lr=5e-4, betas=(0.9, 0.95), weight_decay=0.05),
    clip_grad=dict(max_norm=1.0))
warmup = max(1, min(50, max_steps // 10))  # iterations of linear warm-up
param_scheduler = [
    dict(type="LinearLR", start_factor=0.01, by_epoch=False, begin=0, end=warmup),
    dict(type="CosineAnnealingLR", by_epoch=False, begin=warmup, end=max_steps, eta_min=1e-6),
]
default_hooks = dict(logger=dict(interval=50),
                     checkpoint=dict(interval=200, max_keep_ckpts=1))
custom_hooks = [dict(type="ExportStudentHook")]
