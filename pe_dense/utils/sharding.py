"""Fully sharded data parallel (torch FSDP2, ``torch.distributed.fsdp.fully_shard``) for any
model, one sharding unit per block, and the per-rank size of the sharded training state.

Plain PyTorch: the engine (:mod:`pe_dense.engine.fsdp`) and the memory benchmark both call
:func:`shard_model`, passing the block classes to wrap (a backbone's ``blocks()``). Needs an
initialised default process group (``torchrun``; gloo on CPU, nccl on CUDA).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

import torch
import torch.distributed as dist
from torch import nn

__all__ = ["STRATEGIES", "shard_model", "mixed_precision_policy", "local_state_bytes",
           "DTYPES"]

log = logging.getLogger(__name__)

STRATEGIES = ("ddp", "fsdp")  # data parallelism: replicas (DDP) or shards (FSDP2)

DTYPES = {"float32": torch.float32, "fp32": torch.float32, "bfloat16": torch.bfloat16,
          "bf16": torch.bfloat16, "float16": torch.float16, "fp16": torch.float16}


def _dtype(name: str | torch.dtype | None) -> torch.dtype | None:
    if name is None or isinstance(name, torch.dtype):
        return name
    if name not in DTYPES:
        raise ValueError(f"unknown dtype {name!r}; use one of {sorted(DTYPES)}")
    return DTYPES[name]


def mixed_precision_policy(param_dtype: str | torch.dtype | None = None,
                           reduce_dtype: str | torch.dtype | None = None):
    """FSDP2's MixedPrecisionPolicy: parameters all-gathered (and computed) in ``param_dtype``,
    gradients reduce-scattered in ``reduce_dtype``; ``None`` keeps the parameters' own dtype
    (float32: the CPU setting). The sharded parameters and the optimiser stay float32."""
    from torch.distributed.fsdp import MixedPrecisionPolicy

    return MixedPrecisionPolicy(param_dtype=_dtype(param_dtype), reduce_dtype=_dtype(reduce_dtype))


def _broadcast_from_rank0(model: nn.Module) -> None:
    """Make every rank's copy rank 0's (as DDP does at start) before the shards are cut."""
    with torch.no_grad():
        for tensor in [*model.parameters(), *model.buffers()]:
            dist.broadcast(tensor.data, src=0)


def shard_model(model: nn.Module, block_types: tuple[type[nn.Module], ...], *,
                device_type: str = "cpu", param_dtype: str | torch.dtype | None = None,
                reduce_dtype: str | torch.dtype | None = None, offload: bool = False,
                reshard_after_forward: bool = True) -> nn.Module:
    """Shard ``model`` in place with FSDP2 over all ranks of the default process group.

    Every submodule that is an instance of ``block_types`` becomes its own unit (its parameters
    are all-gathered just before its forward and freed after it, again in backward); the root
    unit holds the rest (patch embedding, heads). Rank 0's weights are broadcast first, so all
    ranks start equal, as with DDP. ``device_type``: the mesh's device (``"cpu"`` with gloo,
    ``"cuda"`` with nccl); ``param_dtype``/``reduce_dtype``: see :func:`mixed_precision_policy`;
    ``offload``: keep shards, gradients and optimiser state in CPU memory (CUDA only).
    Returns the model (now an ``FSDPModule``; its parameters are DTensors).
    """
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import CPUOffloadPolicy, OffloadPolicy, fully_shard

    if not dist.is_initialized():
        raise RuntimeError("FSDP needs a process group: start with torchrun --nproc_per_node N "
                           "... --launcher pytorch")
    if offload and device_type == "cpu":
        log.info("FSDP offload ignored: the model already lives in CPU memory")
        offload = False
    _broadcast_from_rank0(model)
    mesh = init_device_mesh(device_type, (dist.get_world_size(),))
    options = dict(mesh=mesh, mp_policy=mixed_precision_policy(param_dtype, reduce_dtype),
                   offload_policy=CPUOffloadPolicy() if offload else OffloadPolicy())
    blocks = [m for m in model.modules() if isinstance(m, block_types) and m is not model]
    for block in blocks:
        fully_shard(block, reshard_after_forward=reshard_after_forward, **options)
    fully_shard(model, reshard_after_forward=reshard_after_forward, **options)
    log.info("FSDP: %d block units + root over %d ranks (%s; params %s, reduce %s%s)",
             len(blocks), dist.get_world_size(), device_type, param_dtype or "as stored",
             reduce_dtype or "as stored", ", CPU offload" if offload else "")
    return model


def _local_bytes(tensors: Iterable[torch.Tensor]) -> int:
    total = 0
    for t in tensors:
        local = t.to_local() if hasattr(t, "to_local") else t
        total += local.numel() * local.element_size()
    return total


def local_state_bytes(model: nn.Module,
                      optimizer: torch.optim.Optimizer | None = None) -> dict[str, int]:
    """Bytes this rank holds of the training state: ``params`` (its shards of the parameters,
    or all of them unsharded), ``grads`` and ``optimizer`` (its state tensors, e.g. AdamW's
    moments). Counted from the tensors themselves, so it is exact and free of allocator noise."""
    params = list(model.parameters())
    state = [] if optimizer is None else [
        v for s in optimizer.state.values() for v in s.values()
        if isinstance(v, torch.Tensor) and v.dim() > 0]
    return {"params": _local_bytes(params),
            "grads": _local_bytes(p.grad for p in params if p.grad is not None),
            "optimizer": _local_bytes(state)}
