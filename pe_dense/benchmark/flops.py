"""FLOPs of one benchmark iteration, from ``torch.utils.flop_counter`` (matmuls and attention,
the CPU attention kernel included; 1 multiply-add = 2 FLOPs)."""

from __future__ import annotations

import torch

from pe_dense.benchmark.core import Case

__all__ = ["count_gflops"]


def count_gflops(case: Case, model: torch.nn.Module, x: torch.Tensor) -> float:
    """FLOPs of one iteration of ``case`` (forward, or forward + backward), in GFLOP."""
    from torch.utils import flop_counter

    # torch registers attention FLOP formulas for the CUDA kernels only; count the CPU flash
    # kernel (forward and backward) with the same formulas.
    def forward_flops(q, k, v, *args, out_shape=None, **kwargs) -> int:
        return flop_counter.sdpa_flop_count(q, k, v)

    def backward_flops(grad, q, k, v, *args, out_shape=None, **kwargs) -> int:
        return flop_counter.sdpa_backward_flop_count(grad, q, k, v)

    aten = torch.ops.aten
    cpu_sdpa = {aten._scaled_dot_product_flash_attention_for_cpu: forward_flops,
                aten._scaled_dot_product_flash_attention_for_cpu_backward: backward_flops}
    counter = flop_counter.FlopCounterMode(display=False, custom_mapping=cpu_sdpa)
    with counter:
        if case.mode == "train":
            model.forward_features(x).float().square().mean().backward()
        else:
            with torch.no_grad():
                model.forward_features(x)
    model.zero_grad(set_to_none=True)
    return counter.get_total_flops() / 1e9
