"""FSDP in the mmengine Runner: the ``strategy`` config block, the model wrapper, and sharded
checkpoints (torch.distributed.checkpoint) with their consolidation into a plain state dict.

A config (or ``pe-dense train/distill --strategy fsdp``) chooses the strategy::

    strategy = dict(type="fsdp", mixed_precision="bf16", reduce_dtype="bf16", offload=False,
                    grad_checkpointing=True, reshard_after_forward=True)

``type="ddp"`` (the default) keeps mmengine's DistributedDataParallel. Under ``fsdp`` the model
is sharded with torch FSDP2 (:func:`pe_dense.utils.sharding.shard_model`), one unit per backbone
block; ``mixed_precision`` (parameters all-gathered and computed in it) and ``reduce_dtype``
(gradient reduce-scatter; default: ``mixed_precision``, ``"float32"`` for exact sums) apply on
CUDA only: float32 on the CPU; sharded parameters and optimiser state stay float32.
``grad_checkpointing`` (either strategy) calls ``set_grad_checkpointing()`` on every backbone.
Checkpoints become folders (the name the CheckpointHook gives, e.g. ``iter_1000.pth/``):
``model/`` and ``optim/`` hold each rank's shards, ``meta.pth`` the Runner's state (iteration,
message hub, schedulers). ``--resume`` continues from them on the same number of ranks;
:func:`consolidate` (``pe-dense consolidate``, also applied automatically by ``pe-dense test``)
turns one into a plain model checkpoint.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from mmengine.registry import MODEL_WRAPPERS
from torch import nn

from pe_dense.backbone import checkpoints
from pe_dense.backbone.contract import Backbone
from pe_dense.utils.sharding import STRATEGIES, shard_model

__all__ = ["FullyShardedModel", "STRATEGIES", "check_strategy", "fsdp_options",
           "set_grad_checkpointing", "is_sharded_checkpoint", "save_sharded", "load_sharded",
           "consolidate", "full_state_dict", "load_full_state_dict", "plain_model"]

log = logging.getLogger(__name__)

_FSDP_KEYS = {"type", "mixed_precision", "reduce_dtype", "offload", "grad_checkpointing",
              "reshard_after_forward"}


def check_strategy(strategy: str | dict[str, Any] | None) -> dict[str, Any]:
    """The ``strategy`` block with its defaults, ``"fsdp"`` standing for ``dict(type="fsdp")``;
    a ValueError for an unknown type or key."""
    strategy = dict(type=strategy) if isinstance(strategy, str) else dict(strategy or {})
    kind = strategy.setdefault("type", "ddp")
    if kind not in STRATEGIES:
        raise ValueError(f"strategy type {kind!r} is not supported; use one of {STRATEGIES}")
    unknown = set(strategy) - _FSDP_KEYS
    if unknown:
        raise ValueError(f"strategy: unknown keys {sorted(unknown)}; valid: {sorted(_FSDP_KEYS)}")
    strategy.setdefault("grad_checkpointing", False)
    return strategy


def fsdp_options(strategy: dict[str, Any], cuda: bool) -> dict[str, Any]:
    """:class:`FullyShardedModel` keyword arguments for an ``fsdp`` strategy block: bf16
    parameters and gradient reduction on CUDA unless the block says otherwise, float32 on CPU."""
    precision = strategy.get("mixed_precision", "bf16") if cuda else None
    return dict(device_type="cuda" if cuda else "cpu", param_dtype=precision,
                reduce_dtype=strategy.get("reduce_dtype", precision) if cuda else None,
                offload=bool(strategy.get("offload", False)),
                reshard_after_forward=bool(strategy.get("reshard_after_forward", True)))


@MODEL_WRAPPERS.register_module()
class FullyShardedModel(nn.Module):
    """The Runner's model wrapper for FSDP: shards ``module`` (an mmengine BaseModel) in place,
    one unit per backbone block (:func:`block_types`; arguments:
    :func:`pe_dense.utils.sharding.shard_model`), and forwards
    ``train_step``/``val_step``/``test_step`` to it. ``module`` keeps its state-dict keys (its
    parameters become DTensor shards)."""

    def __init__(self, module: nn.Module, device_type: str = "cpu", param_dtype: str | None = None,
                 reduce_dtype: str | None = None, offload: bool = False,
                 reshard_after_forward: bool = True) -> None:
        super().__init__()
        self.module = shard_model(module, block_types(module), device_type=device_type,
                                  param_dtype=param_dtype, reduce_dtype=reduce_dtype,
                                  offload=offload, reshard_after_forward=reshard_after_forward)

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        return self.module(*args, **kwargs)

    def train_step(self, data: Any, optim_wrapper: Any) -> dict[str, torch.Tensor]:
        return self.module.train_step(data, optim_wrapper)

    def val_step(self, data: Any) -> list:
        return self.module.val_step(data)

    def test_step(self, data: Any) -> list:
        return self.module.test_step(data)


def block_types(model: nn.Module) -> tuple[type[nn.Module], ...]:
    """The classes of the blocks of every backbone in ``model`` (its FSDP units)."""
    types = {type(b) for m in model.modules() if isinstance(m, Backbone) for b in m.blocks()}
    if not types:
        raise ValueError(f"{type(model).__name__} holds no backbone with blocks to shard: FSDP "
                         "shards one unit per backbone block")
    return tuple(sorted(types, key=lambda t: t.__qualname__))


def set_grad_checkpointing(model: nn.Module) -> int:
    """Turn on activation checkpointing per block in every backbone of ``model``; returns how
    many."""
    vits = [m for m in model.modules() if isinstance(m, Backbone)]
    for vit in vits:
        vit.set_grad_checkpointing(True)
    return len(vits)


# ----------------------------------------------------------------------------- checkpoints

def is_sharded_checkpoint(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a sharded (FSDP) checkpoint folder written by :func:`save_sharded`."""
    return checkpoints.is_sharded_checkpoint(path)


def full_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """The whole model state dict on rank 0 (CPU tensors; empty on the other ranks). A
    collective: every rank must call it."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

    model = getattr(model, "module", model)
    return get_model_state_dict(
        model, options=StateDictOptions(full_state_dict=True, cpu_offload=True))


def load_full_state_dict(model: nn.Module, state_dict: dict[str, torch.Tensor]) -> None:
    """Load a whole (unsharded) state dict into the sharded ``model`` strictly; every rank
    passes the same dict and keeps its shards (a plain checkpoint as ``load_from``)."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions, set_model_state_dict

    model = getattr(model, "module", model)
    set_model_state_dict(model, state_dict,
                         options=StateDictOptions(full_state_dict=True, strict=True))


def save_sharded(model: nn.Module, optimizer: torch.optim.Optimizer | None, path: str | os.PathLike,
                 runner_state: dict[str, Any]) -> None:
    """Write a sharded checkpoint folder ``path`` from every rank (a collective): ``model/`` and
    ``optim/`` (torch.distributed.checkpoint), ``meta.pth`` (``runner_state``, rank 0). Written
    under a temporary name and renamed, so a killed run leaves no half-written checkpoint."""
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.state_dict import (
        get_model_state_dict,
        get_optimizer_state_dict,
    )

    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    if dist.get_rank() == 0 and tmp.exists():
        shutil.rmtree(tmp)
    dist.barrier()
    module = getattr(model, "module", model)
    dcp.save(get_model_state_dict(module), checkpoint_id=str(tmp / "model"))
    if optimizer is not None:
        dcp.save(get_optimizer_state_dict(module, optimizer), checkpoint_id=str(tmp / "optim"))
    if dist.get_rank() == 0:
        torch.save(runner_state, tmp / "meta.pth")
        _replace(tmp, path)
    dist.barrier()


def _replace(new: Path, path: Path) -> None:
    """Move the folder ``new`` to ``path``; an existing ``path`` is moved aside first and
    removed only once ``new`` is in place, so a kill never leaves neither."""
    if not path.exists():
        os.replace(new, path)
        return
    old = path.with_name(f".{path.name}.old")
    _remove(old)
    os.replace(path, old)
    os.replace(new, path)
    _remove(old)


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path)
    elif path.exists():
        path.unlink()


def load_sharded(model: nn.Module, optimizer: torch.optim.Optimizer | None,
                 path: str | os.PathLike) -> dict[str, Any]:
    """Load a sharded checkpoint folder into the sharded ``model`` (and ``optimizer`` when
    given; a collective) and return its ``meta.pth`` (the Runner's state)."""
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint import state_dict as sd

    path = Path(path)
    module = getattr(model, "module", model)
    model_sd = sd.get_model_state_dict(module)
    dcp.load(model_sd, checkpoint_id=str(path / "model"))
    sd.set_model_state_dict(module, model_sd)
    if optimizer is not None and (path / "optim" / ".metadata").is_file():
        optim_sd = sd.get_optimizer_state_dict(module, optimizer)
        dcp.load(optim_sd, checkpoint_id=str(path / "optim"))
        sd.set_optimizer_state_dict(module, optimizer, optim_sd)
    # Our own file, written by save_sharded (mmengine state pickles more than tensors).
    return checkpoints.load_object(path / "meta.pth", trusted=True)


def consolidate(path: str | os.PathLike) -> dict[str, Any]:
    """A sharded checkpoint folder as one plain checkpoint ``{"state_dict", "meta"}`` (CPU
    tensors; no process group needed), readable by ``pe-dense test``, ``load_model_weights``
    and ``create_backbone(weights=...)`` once saved with ``torch.save``."""
    return checkpoints.consolidate_sharded(path)


def plain_model(model: nn.Module, build: Callable[[], nn.Module]) -> nn.Module | None:
    """An unsharded copy of the sharded ``model`` on rank 0 (None on the others; a collective):
    ``build()`` makes the module on the meta device, then the gathered weights are assigned."""
    state = full_state_dict(model)
    if dist.get_rank() != 0:
        return None
    with torch.device("meta"):
        plain = build()
    plain.load_state_dict(state, assign=True)
    return plain
