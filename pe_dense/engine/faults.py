"""Faults during training, each stopped with a message that says what happened and what to do.

- A NaN or Inf loss: the optimiser step of that batch is skipped (the weights stay good), then
  the run stops with the iteration, the loss terms that went bad and the last good checkpoint
  (:class:`NonFiniteLossError`); with ``train_cfg.skip_nonfinite=True`` the batch is skipped
  and counted instead (the count is in the run's summary). Under DDP every rank skips together.
- A training sample that cannot be read (a corrupt image): :class:`pe_dense.data.guard.SampleGuard`
  around the training set (config type ``GuardedDataset``) names it; with
  ``train_cfg.skip_bad_samples=True`` it is skipped and counted.
- A checkpoint that cannot be written (disk full): :class:`SafeCheckpointHook` removes old
  checkpoints (``max_keep_ckpts``) only after the new one is in place, and the runner stops
  with :class:`CheckpointWriteError` naming the checkpoint that is still intact.
"""

from __future__ import annotations

import math
import os
from collections import deque
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from mmengine.dist import is_main_process
from mmengine.hooks import CheckpointHook, Hook

from pe_dense.data.guard import SampleGuard
from pe_dense.engine.registry import DATASETS, HOOKS

__all__ = ["NonFiniteLossError", "CheckpointWriteError", "SafeCheckpointHook", "NonFiniteHook",
           "GuardedDataset", "guard_optim_wrapper", "FAULT_KEYS"]

# train_cfg keys read by pe_dense (popped before mmengine sees train_cfg).
FAULT_KEYS = ("skip_nonfinite", "skip_bad_samples")


class NonFiniteLossError(RuntimeError):
    """A NaN or Inf loss; the message names the iteration, the bad terms and the fix."""


class CheckpointWriteError(OSError):
    """A checkpoint that could not be written; the previous one is intact (named)."""


def last_good_checkpoint(runner: Any) -> str | None:
    """The newest checkpoint this run wrote or resumed from (None if there is none)."""
    saved = [p for p in getattr(runner, "saved_checkpoints", []) if Path(p).exists()]
    if saved:
        return str(saved[-1])
    resumed = getattr(runner, "resumed_from", None)
    return str(resumed) if resumed else None


def guard_optim_wrapper(runner: Any, optim_wrapper: Any) -> Any:
    """Skip the optimiser step of a batch whose loss is not finite (all ranks agree); the
    :class:`NonFiniteHook` then stops the run or counts the batch."""
    update = optim_wrapper.update_params

    def update_params(loss: torch.Tensor, *args: Any, **kwargs: Any) -> None:
        finite = torch.isfinite(loss.detach()).all()
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            flag = finite.to(torch.float32).reshape(1)
            torch.distributed.all_reduce(flag, op=torch.distributed.ReduceOp.MIN)
            finite = flag[0] > 0
        if bool(finite):
            update(loss, *args, **kwargs)
            return
        runner._nonfinite_batch = True
        optim_wrapper.zero_grad()

    optim_wrapper.update_params = update_params
    return optim_wrapper


@HOOKS.register_module()
class NonFiniteHook(Hook):
    """Stops the run on a batch whose loss was not finite, or counts it (``skip=True``)."""

    priority = "VERY_HIGH"  # before the checkpoint and logger hooks

    def __init__(self, skip: bool = False) -> None:
        self.skip = skip

    def after_train_iter(self, runner: Any, batch_idx: int, data_batch: Any = None,
                         outputs: Mapping[str, Any] | None = None) -> None:
        if not getattr(runner, "_nonfinite_batch", False):
            return
        runner._nonfinite_batch = False
        step = runner.iter + 1
        bad = {k: _number(v) for k, v in (outputs or {}).items()
               if k != "loss" and _number(v) is not None and not math.isfinite(_number(v))}
        terms = ", ".join(f"{k}={v}" for k, v in bad.items()) or "the summed loss"
        if self.skip:
            runner.nonfinite_iters.append(step)
            runner.logger.warning(f"iteration {step}: non-finite loss ({terms}); batch skipped "
                                  f"(skip_nonfinite, {len(runner.nonfinite_iters)} so far)")
            return
        last = last_good_checkpoint(runner)
        resume = (f"the last good checkpoint is {last} (the weights were not updated with "
                  "this batch); continue from it with --resume"
                  if last else "no checkpoint was written yet")
        raise NonFiniteLossError(
            f"iteration {step}: the loss is not finite ({terms}); {resume}\n"
            "fix: lower the learning rate or add optim_wrapper.clip_grad=dict(max_norm=1.0); "
            "or set train_cfg.skip_nonfinite=True to skip such batches (counted)")


def _number(value: Any) -> float | None:
    try:
        return float(value.detach() if hasattr(value, "detach") else value)
    except (TypeError, ValueError, RuntimeError):
        return None


@DATASETS.register_module()
class GuardedDataset(SampleGuard):
    """:class:`~pe_dense.data.guard.SampleGuard` of a dataset config (``build_runner`` wraps
    the training set in it)."""

    def __init__(self, dataset: Any, skip_bad_samples: bool = False) -> None:
        if isinstance(dataset, Mapping):
            dataset = DATASETS.build(dict(dataset))
        if hasattr(dataset, "full_init"):
            dataset.full_init()
        super().__init__(dataset, skip_bad_samples=skip_bad_samples)


@HOOKS.register_module()
class SafeCheckpointHook(CheckpointHook):
    """mmengine's CheckpointHook, but outdated checkpoints (``max_keep_ckpts``) are removed
    only after the new one is written, so a failed write leaves the previous one in place."""

    def _save_checkpoint_with_step(self, runner: Any, step: int, meta: Any) -> None:
        keep = self.max_keep_ckpts
        if keep <= 0:
            super()._save_checkpoint_with_step(runner, step, meta)
            return
        ids = list(self.keep_ckpt_ids)
        if not ids or ids[-1] != step:
            ids.append(step)
        outdated, ids = ids[:-keep], ids[-keep:]
        runner.message_hub.update_info("keep_ckpt_ids", ids)
        self.max_keep_ckpts = -1  # the parent writes without removing anything
        try:
            super()._save_checkpoint_with_step(runner, step, meta)
        finally:
            self.max_keep_ckpts = keep
        self.keep_ckpt_ids = deque(ids, keep)
        if not is_main_process():
            return
        for old in outdated:
            if old == step:
                continue
            path = self.file_backend.join_path(self.out_dir, self.filename_tmpl.format(old))
            if self.file_backend.isfile(path):
                self.file_backend.remove(path)
            elif self.file_backend.isdir(path):
                self.file_backend.rmtree(path)


def write_error(exc: OSError, path: str, runner: Any) -> CheckpointWriteError:
    """The :class:`CheckpointWriteError` for a failed write of ``path``."""
    last = last_good_checkpoint(runner)
    kept = (f"the previous checkpoint {last} is intact" if last else
            "no earlier checkpoint of this run exists")
    reason = os.strerror(exc.errno) if exc.errno else str(exc)
    return CheckpointWriteError(
        f"could not write checkpoint {path} ({reason}); nothing was replaced: {kept}\n"
        f"fix: free space in {Path(path).parent} (or pick another --work-dir), then continue "
        "with --resume")
