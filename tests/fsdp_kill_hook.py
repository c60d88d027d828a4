"""A test-only mmengine hook for tests/test_fsdp.py: kills the process (no clean-up, no
exception handling, like SIGKILL) right after the checkpoint of iteration ``at`` is written.
Imported by the run's config through ``custom_imports`` with tests/ on PYTHONPATH."""

from __future__ import annotations

import os

import torch.distributed as dist
from mmengine.hooks import Hook

from pe_dense.engine.registry import HOOKS


@HOOKS.register_module()
class KillAfterIter(Hook):
    priority = "LOWEST"  # after the CheckpointHook (VERY_LOW) has saved this iteration

    def __init__(self, at: int) -> None:
        self.at = at

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
        if runner.iter + 1 == self.at:
            if dist.is_initialized():  # DDP: rank 0 alone writes the checkpoint; let it finish
                dist.barrier()
            os._exit(17)
