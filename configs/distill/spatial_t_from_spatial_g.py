# Distil a small PE-Spatial model from a large one (the README's "mixture of pairwise token
# cosine similarity and direct distillation"): student PE-Spatial-T16-512 (random init or
# PE-Core-T weights), teacher the last block of PE-Spatial-G14-448. Direct per-token matching
# goes through a Linear projection (192 -> 1536 channels); the pairwise term compares plain
# cosine matrices (temperature=None). The teacher sees the student's image at its own patch
# size (14 px) so both have the same token grid. No published hyper-parameters: AdamW below is
# a reasonable starting point, not the official schedule.
default_scope = "pe_dense"

data_roots = ["data/unlabelled_images"]
spatial_g = "checkpoints/PE-Spatial-G14-448.pt"  # or "hf://facebook/PE-Spatial-G14-448"
cache = dict(dir="work_dirs/cache/spatial_t_from_spatial_g", grid=32, shard_size=256,
             batch_size=8)

teachers = [
    dict(name="spatial_g", kind="pe_layer", model="PE-Spatial-G14-448", weights=spatial_g,
         layer=-1, project=True, losses=dict(cosine=1.0, locality=1.0), temperature=None),
]

model = dict(
    type="DistillModel",
    student=dict(model="PE-Spatial-T16-512", weights=None, drop_path=0.1),
    teachers=teachers, crop_size=512,
    views=dict(scale=(0.35, 1.0), flip=True, jitter=0.3),
    mask=None,
    seed=0,
)

train_dataloader = dict(
    batch_size=32, num_workers=8, persistent_workers=True,
    sampler=dict(type="InfiniteSampler", shuffle=True),
    collate_fn=dict(type="default_collate"),
    dataset=dict(type="DistillImageDataset", roots=data_roots, image_size=576,
                 cache_dir=cache["dir"], teachers=teachers))

max_steps = 50000
train_cfg = dict(type="IterBasedTrainLoop", max_iters=max_steps)
optim_wrapper = dict(
    type="OptimWrapper",
    constructor="LayerDecayOptimWrapperConstructor",
    optimizer=dict(type="AdamW", lr=1e-3, betas=(0.9, 0.95), weight_decay=0.05),
    paramwise_cfg=dict(layer_decay=1.0),
    clip_grad=dict(max_norm=1.0))
param_scheduler = [
    dict(type="LinearLR", start_factor=1e-3, by_epoch=False, begin=0, end=2000),
    dict(type="CosineAnnealingLR", by_epoch=False, begin=2000, end=max_steps, eta_min=1e-6),
]

default_hooks = dict(
    timer=dict(type="IterTimerHook"),
    logger=dict(type="LoggerHook", interval=50),
    param_scheduler=dict(type="ParamSchedulerHook"),
    checkpoint=dict(type="CheckpointHook", by_epoch=False, interval=2000, max_keep_ckpts=3),
    sampler_seed=dict(type="DistSamplerSeedHook"),
)
custom_hooks = [dict(type="ExportStudentHook")]
log_processor = dict(by_epoch=False, window_size=50)
randomness = dict(seed=0)
env_cfg = dict(cudnn_benchmark=False, dist_cfg=dict(backend="nccl"))
visualizer = dict(type="Visualizer", vis_backends=[dict(type="LocalVisBackend")])
