# The PE-Spatial-G alignment recipe (PE paper section 5, Table 21; docs/pe_reference.md section 5)
# as a config. Student: PE-Spatial-G14-448 initialised from PE-Core-G (pooling head dropped,
# LayerScale 0.1 added), drop path 0.4, 75% masking of 2x2 token blocks. Teachers: the frozen
# PE-Core-G block 41 (layer=40), cosine loss; SAM 2.1-L at 1024 px with a 32 x 32 point grid,
# locality loss with t = 20. LAMB (0.9, 0.95), lr 5e-4, weight decay 0.05, no warm-up, 24k steps.
# The paper's batch is 12,288 on a cluster: set the per-GPU batch and the number of GPUs here.
# Needs the official checkpoints on disk (edit the paths) and `pip install pe-dense[sam2]`.
#   pe-dense distill-cache configs/distill/pe_spatial_g_recipe.py      # optional, large
#   torchrun --nproc_per_node 8 tools/distill.py configs/distill/pe_spatial_g_recipe.py \
#       --launcher pytorch
# The 1.9B student does not fit DDP replicas with its AdamW/LAMB state on common GPUs, so the
# config shards it with FSDP (strategy below; checkpoints are folders of shards, `pe-dense
# consolidate` merges one). Multi-node: see README "Multi-GPU and multi-node training".
default_scope = "pe_dense"

data_roots = ["data/unlabelled_images"]   # image folders and/or video frame folders
core_g = "checkpoints/PE-Core-G14-448.pt"  # or "hf://facebook/PE-Core-G14-448" when online
sam2_ckpt = "checkpoints/sam2.1_hiera_large.pt"
cache = dict(dir="work_dirs/cache/pe_spatial_g_recipe", grid=32, shard_size=256, batch_size=8)

teachers = [
    dict(name="core41", kind="pe_layer", model="PE-Core-G14-448", weights=core_g, layer=40,
         losses=dict(cosine=1.0)),
    dict(name="sam", kind="sam2", config="configs/sam2.1/sam2.1_hiera_l.yaml",
         checkpoint=sam2_ckpt, image_size=1024, points_per_side=32, chunk=256,
         losses=dict(locality=1.0), temperature=20.0),
]

model = dict(
    type="DistillModel",
    student=dict(model="PE-Spatial-G14-448", weights=core_g, drop_path=0.4,
                 grad_checkpointing=True),
    teachers=teachers, crop_size=448,
    views=dict(scale=(0.35, 1.0), flip=True, jitter=0.3),
    mask=dict(ratio=0.75, block=2),
    seed=0,
)

train_dataloader = dict(
    batch_size=16, num_workers=8, persistent_workers=True,
    sampler=dict(type="InfiniteSampler", shuffle=True),
    collate_fn=dict(type="default_collate"),
    dataset=dict(type="DistillImageDataset", roots=data_roots, image_size=512,
                 cache_dir=cache["dir"], teachers=teachers))

max_steps = 24000
train_cfg = dict(type="IterBasedTrainLoop", max_iters=max_steps)
# FSDP computes in bf16 itself (strategy.mixed_precision), so the optimiser wrapper is the plain
# one; with strategy type="ddp" use type="AmpOptimWrapper", dtype="bfloat16" instead.
optim_wrapper = dict(
    type="OptimWrapper",
    constructor="LayerDecayOptimWrapperConstructor",
    optimizer=dict(type="Lamb", lr=5e-4, betas=(0.9, 0.95), weight_decay=0.05),
    paramwise_cfg=dict(layer_decay=1.0),
    clip_grad=dict(max_norm=1.0))
param_scheduler = [dict(type="CosineAnnealingLR", by_epoch=False, begin=0, end=max_steps,
                        eta_min=0.0)]

default_hooks = dict(
    timer=dict(type="IterTimerHook"),
    logger=dict(type="LoggerHook", interval=50),
    param_scheduler=dict(type="ParamSchedulerHook"),
    checkpoint=dict(type="CheckpointHook", by_epoch=False, interval=1000, max_keep_ckpts=3),
    sampler_seed=dict(type="DistSamplerSeedHook"),
)
custom_hooks = [dict(type="ExportStudentHook")]
log_processor = dict(by_epoch=False, window_size=50)
randomness = dict(seed=0)
env_cfg = dict(cudnn_benchmark=False, dist_cfg=dict(backend="nccl"))
visualizer = dict(type="Visualizer", vis_backends=[dict(type="LocalVisBackend")])
# The student is sharded per block (FSDP2) over all ranks; the frozen teachers are not modules of
# the model and are not sharded. mixed_precision/reduce_dtype apply on CUDA (float32 on CPU).
strategy = dict(type="fsdp", mixed_precision="bf16", reduce_dtype="float32",
                grad_checkpointing=True, offload=False)
