# Proof-of-learning config (docs/benchmarks.md, issue 6): a PE-Test student (4 blocks, width 64,
# random init) aligned on the CPU to a fixed random PE-Test teacher layer (block 2, seed 1) and
# to a tiny random SAM 2.1 (hiera-t, 256 px, 8 x 8 point prompts). The two random teachers are
# unrelated, so the PE cosine goes through a Linear projection (project=True): the student's
# own pairwise structure is then free to follow SAM. Teacher targets come from the cache when
# `pe-dense distill-cache` has written it (run with OMP_NUM_THREADS=1 on shared CPUs):
#   pe-dense distill-cache configs/distill/pe_test_random_teachers.py
#   pe-dense distill configs/distill/pe_test_random_teachers.py
#   pe-dense distill-eval configs/distill/pe_test_random_teachers.py \
#       --checkpoint work_dirs/pe_test_random_teachers/student.pt --curves
default_scope = "pe_dense"

data_roots = ["../shared/data/images", "../shared/data/video_frames"]
base_size = 192          # every image is first resized to base_size x base_size
crop = 128               # student input (8 x 8 tokens); random crops of the base image
holdout = 10             # every 10th image is held out for validation
cache = dict(dir="work_dirs/cache/pe_test_random_teachers", grid=12, shard_size=32,
             batch_size=4)

teachers = [
    dict(name="pe", kind="pe_layer", model="PE-Test", layer=2, seed=1, project=True,
         losses=dict(cosine=1.0)),
    dict(name="sam", kind="sam2", config="configs/sam2.1/sam2.1_hiera_t.yaml", checkpoint=None,
         image_size=256, points_per_side=8, seed=0, losses=dict(locality=3.0),
         temperature=20.0),
]

model = dict(
    type="DistillModel",
    student=dict(model="PE-Test", drop_path=0.0, ls_init_value=0.1),
    teachers=teachers, crop_size=crop,
    views=dict(scale=(0.9, 1.0), flip=True, jitter=0.2),
    mask=None,
    seed=0,
)

train_dataloader = dict(
    batch_size=8, num_workers=0, persistent_workers=False,
    sampler=dict(type="InfiniteSampler", shuffle=True),
    collate_fn=dict(type="default_collate"),
    dataset=dict(type="DistillImageDataset", roots=data_roots, image_size=base_size,
                 split="train", holdout_every=holdout, cache_dir=cache["dir"], teachers=teachers,
                 keep_in_memory=True))
val_dataloader = dict(
    batch_size=8, num_workers=0, persistent_workers=False,
    sampler=dict(type="DefaultSampler", shuffle=False),
    collate_fn=dict(type="default_collate"),
    dataset=dict(type="DistillImageDataset", roots=data_roots, image_size=base_size,
                 split="val", holdout_every=holdout, cache_dir=cache["dir"], teachers=teachers,
                 keep_in_memory=True))
val_evaluator = dict(type="DistillMetric")

max_steps = 3000
train_cfg = dict(type="IterBasedTrainLoop", max_iters=max_steps, val_interval=250)
val_cfg = dict(type="ValLoop")

optim_wrapper = dict(
    type="OptimWrapper",
    constructor="LayerDecayOptimWrapperConstructor",
    optimizer=dict(type="AdamW", lr=2e-3, betas=(0.9, 0.95), weight_decay=0.05),
    paramwise_cfg=dict(layer_decay=1.0),
    clip_grad=dict(max_norm=1.0))
param_scheduler = [
    dict(type="LinearLR", start_factor=0.01, by_epoch=False, begin=0, end=100),
    dict(type="CosineAnnealingLR", by_epoch=False, begin=100, end=max_steps, eta_min=1e-5),
]

default_hooks = dict(
    timer=dict(type="IterTimerHook"),
    logger=dict(type="LoggerHook", interval=20),
    param_scheduler=dict(type="ParamSchedulerHook"),
    checkpoint=dict(type="CheckpointHook", by_epoch=False, interval=500, max_keep_ckpts=2),
    sampler_seed=dict(type="DistSamplerSeedHook"),
)
custom_hooks = [dict(type="ExportStudentHook")]
log_processor = dict(by_epoch=False, window_size=20)
randomness = dict(seed=0)
env_cfg = dict(cudnn_benchmark=False, dist_cfg=dict(backend="nccl"))
visualizer = dict(type="Visualizer", vis_backends=[dict(type="LocalVisBackend")])
