# Runtime shared by every pe_dense task: hooks, logging, checkpoints (written atomically by
# pe_dense.engine.runner.AtomicCheckpointRunner), seeding. Iteration-based throughout.
default_scope = "pe_dense"

default_hooks = dict(
    timer=dict(type="IterTimerHook"),
    logger=dict(type="LoggerHook", interval=20),  # loss, lr, time and ETA every 20 iterations
    param_scheduler=dict(type="ParamSchedulerHook"),
    checkpoint=dict(type="CheckpointHook", by_epoch=False, interval=5000, max_keep_ckpts=3,
                    save_last=True),
    sampler_seed=dict(type="DistSamplerSeedHook"),
)
env_cfg = dict(
    cudnn_benchmark=False,
    mp_cfg=dict(mp_start_method="fork", opencv_num_threads=0),
    dist_cfg=dict(backend="nccl"),  # pe-dense switches to gloo on machines without CUDA
)
log_processor = dict(type="LogProcessor", window_size=20, by_epoch=False)
log_level = "INFO"
load_from = None
resume = False
randomness = dict(seed=0)
