# The paper in miniature, stage 1 (PE-Core in miniature): contrastive image-text training of
# PE-Mini (8 blocks, width 96, patch 8) and its text tower (3 blocks) from scratch on the
# captioned synthetic world, CLIP loss, on 2 CPU cores. Data and the whole pipeline:
#   python tools/paper_in_miniature.py            (writes the world, runs every stage)
# or this stage alone, after python tools/make_world.py work_dirs/paper_mini/world:
#   OMP_NUM_THREADS=2 pe-dense train configs/paper_mini/clip_pe-mini_world.py
# Writes work_dirs/clip_pe-mini_world/clip.pt (official CLIP layout):
#   pe-dense classify IMAGE --model PE-Mini --weights work_dirs/clip_pe-mini_world/clip.pt \
#       --labels "red circle,blue square" --templates "a photo of a {}."
_base_ = ["../_base_/default_runtime.py"]
world = "work_dirs/paper_mini/world/"
image_size = 96          # the world's size and PE-Mini's native size (a 12 x 12 grid)
batch_size = 64
max_iters = 2000

model = dict(type="ContrastiveCLIP", model="PE-Mini", seed=0)

train_dataloader = dict(
    batch_size=batch_size, num_workers=0, persistent_workers=False,
    sampler=dict(type="InfiniteSampler", shuffle=True),
    collate_fn=dict(type="default_collate"),
    dataset=dict(type="CaptionDataset", root=world + "train", image_size=image_size,
                 keep_in_memory=True))
val_dataloader = dict(
    batch_size=batch_size, num_workers=0, persistent_workers=False,
    sampler=dict(type="DefaultSampler", shuffle=False),
    collate_fn=dict(type="default_collate"),
    dataset=dict(type="CaptionDataset", root=world + "val", image_size=image_size,
                 keep_in_memory=True))
val_evaluator = dict(type="RetrievalMetric")

train_cfg = dict(type="IterBasedTrainLoop", max_iters=max_iters, val_interval=500)
val_cfg = dict(type="ValLoop")
optim_wrapper = dict(
    optimizer=dict(type="AdamW", lr=2e-3, betas=(0.9, 0.98), eps=1e-6, weight_decay=0.1),
    clip_grad=dict(max_norm=1.0))
warmup = max(1, min(100, max_iters // 10))  # iterations of linear warm-up
param_scheduler = [
    dict(type="LinearLR", start_factor=0.01, by_epoch=False, begin=0, end=warmup),
    dict(type="CosineAnnealingLR", by_epoch=False, begin=warmup, end=max_iters, eta_min=1e-5),
]
default_hooks = dict(logger=dict(interval=50),
                     checkpoint=dict(interval=500, max_keep_ckpts=1))
custom_hooks = [dict(type="ExportCLIPHook")]
