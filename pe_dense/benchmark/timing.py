"""Backbone speed measurement: :func:`run_case` times a case (and its FLOPs and memory).

One :class:`Case` is a (model, resolution, batch, dtype, attention, compile, device, mode,
overrides) configuration; the model is any encoder under the backbone contract (a PE variant or
``timm/<name>``, impl ``pe_dense``: measured through pe_dense's backbone). :func:`run_case`
measures it and, on request for PE variants, timm's matching ``vit_pe_*`` model built with
identical weights (through our converter) in the same process, after checking that both give
the same output.

Timing: warm-up iterations, then ``repeats`` synchronised iterations; median and p90 latency.
Implementations are timed interleaved (ours, theirs, ours, ...) so that drift in a shared machine
affects both alike. Memory: on CUDA the allocator's peak (``max_memory_allocated``); on CPU the
peak resident set size of a fresh subprocess that runs the same workload (the kernel's high-water
mark, reset just before the iteration), minus its resident size then; the lower of two such runs.
So the number is what one forward (and backward) itself needs. FLOPs come
from ``torch.utils.flop_counter`` (matmuls and attention, the CPU attention kernel included;
1 multiply-add = 2 FLOPs).
"""

from __future__ import annotations

import logging
import statistics
import time
from collections.abc import Callable, Sequence

import torch

from pe_dense.benchmark.core import (
    Case,
    Result,
    build_backbone,
    make_input,
    make_step,
    official_timm_resampling,
    sync,
    timm_twin,
)
from pe_dense.benchmark.flops import count_gflops
from pe_dense.benchmark.memory import measure_memory
from pe_dense.benchmark.runtimes import Exporter, impl_of, runtime_steps

__all__ = ["run_case"]

log = logging.getLogger(__name__)


def _is_oom(exc: BaseException) -> bool:
    return isinstance(exc, MemoryError | torch.cuda.OutOfMemoryError) or (
        "out of memory" in str(exc).lower())


def run_case(case: Case, compare: str | None = None, warmup: int = 2, repeats: int = 5,
             memory: bool = True, runtimes: Sequence[str] = ("torch",),
             exporter: Exporter | None = None) -> list[Result]:
    """Measure ``case`` for pe_dense in each of ``runtimes`` (torch = eager, torch-compile,
    onnxruntime, onnxruntime-int8; see :mod:`~pe_dense.benchmark.runtimes`, ONNX ones need
    ``exporter``) and for timm when ``compare == "timm"``. Out-of-memory and other per-case
    failures are reported in ``Result.status``, not raised."""
    if compare == "timm":
        with official_timm_resampling():
            return _run_case(case, compare, warmup, repeats, memory, list(runtimes), exporter)
    return _run_case(case, compare, warmup, repeats, memory, list(runtimes), exporter)


def _run_case(case: Case, compare: str | None, warmup: int, repeats: int, memory: bool,
              runtimes: list[str], exporter: Exporter | None) -> list[Result]:
    impls = [impl_of(r) for r in runtimes] + (["timm"] if compare == "timm" else [])
    results = {impl: Result(case, impl) for impl in impls}
    try:
        ours = build_backbone(case)
        models = {"pe_dense": ours}
        if compare == "timm":
            models["timm"] = timm_twin(case, ours)
        x = make_input(case, ours)
        for impl, model in models.items():  # exported / compiled runtimes: ours' numbers
            params = sum(p.numel() for p in model.parameters()) / 1e6
            gflops = count_gflops(case, model, x[:1]) * case.batch_size
            for name in [impl] if impl == "timm" else [i for i in results if i != "timm"]:
                results[name].params_m, results[name].gflops = params, gflops
        if compare == "timm":
            with torch.no_grad():
                diff = (ours.forward_features(x[:1]) - models["timm"].forward_features(x[:1]))
            results["timm"].max_abs_diff = diff.abs().max().item()
        steps = {impl: make_step(case, m, x) for impl, m in models.items() if impl in results}
        steps.update(runtime_steps(case, ours, x, runtimes, exporter, results))
        times = _time_interleaved(steps, case.device, warmup, repeats)
    except Exception as exc:  # a failed case must not end a sweep
        status = "oom" if _is_oom(exc) else f"error: {type(exc).__name__}: {exc}"
        log.warning("%s failed: %s", case, status)
        for r in results.values():
            r.status = status
        return list(results.values())
    _fill(case, results, times, ours.patch_size, memory)
    return list(results.values())


def _fill(case: Case, results: dict[str, Result], times: dict[str, list[float]], patch: int,
          memory: bool) -> None:
    tokens = (case.resolution // patch) ** 2 * case.batch_size
    for impl, ts in times.items():
        r = results[impl]
        r.latency_ms = statistics.median(ts) * 1e3
        r.latency_p90_ms = _quantile(ts, 0.9) * 1e3
        r.images_per_s = case.batch_size / statistics.median(ts)
        r.tokens_per_s = tokens / statistics.median(ts)
        if memory and impl != "torch-compile":  # compiled memory is not measured
            target = f"onnx:{r.extra['onnx']}" if "onnx" in r.extra else impl
            r.peak_mem_mb = measure_memory(case, target)


def _time_interleaved(steps: dict[str, Callable[[], None]], device: str, warmup: int,
                      repeats: int) -> dict[str, list[float]]:
    for _ in range(warmup):
        for step in steps.values():
            step()
    sync(device)
    times: dict[str, list[float]] = {impl: [] for impl in steps}
    for _ in range(repeats):
        for impl, step in steps.items():
            start = time.perf_counter()
            step()
            sync(device)
            times[impl].append(time.perf_counter() - start)
    return times


def _quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]
