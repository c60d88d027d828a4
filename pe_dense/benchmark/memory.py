"""Peak memory of one benchmark iteration: on CUDA the allocator's peak
(``max_memory_allocated``); on CPU the peak resident set size of a fresh
:mod:`~pe_dense.benchmark.worker` subprocess running the same workload (the kernel's high-water
mark, reset just before the iteration), minus its resident size then; the lower of two runs.
So the number is what one forward (and backward) itself needs.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from dataclasses import asdict, replace

import torch

from pe_dense.benchmark.core import (
    Case,
    build_backbone,
    encoder_info,
    make_input,
    make_step,
    official_timm_resampling,
    timm_model,
)

__all__ = ["measure_memory", "peak_memory", "mark_memory", "peak_mib", "measure_step",
           "reset_peak_rss", "status_mib"]


def measure_memory(case: Case, impl: str = "pe_dense") -> float:
    """Peak memory in MiB of one iteration of ``case`` (see the module docstring)."""
    if case.device.startswith("cuda"):
        return peak_memory(case, impl)
    peaks = []
    for _ in range(2):  # RSS peaks only err upwards (allocator transients): keep the lower
        proc = subprocess.run(
            [sys.executable, "-m", "pe_dense.benchmark.worker", json.dumps(asdict(case)), impl],
            capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            tail = proc.stderr.strip().splitlines()[-1:] or ["no output"]
            raise RuntimeError(f"memory worker failed for {case} ({impl}): {tail[0]}")
        peaks.append(float(proc.stdout.strip().splitlines()[-1]))
    return min(peaks)


def peak_memory(case: Case, impl: str) -> float:
    """Build, run one iteration, return the peak in MiB above the pre-iteration level."""
    if impl == "timm":
        with official_timm_resampling():
            return _run_memory(case, timm_model(case))
    if impl.startswith("onnx:"):  # an exported model in ONNX Runtime
        from pe_dense.runtime.session import open_session

        session = open_session(impl[len("onnx:"):], threads=torch.get_num_threads())
        x = make_input(case, encoder_info(case.model, case.overrides))
        return measure_step(lambda: session(x))
    return _run_memory(case, build_backbone(case))


def _run_memory(case: Case, model: torch.nn.Module) -> float:
    x = make_input(case, encoder_info(case.model, case.overrides))
    step = make_step(replace(case, compile=False), model, x)
    return measure_step(step, case.device)


def measure_step(step: Callable[[], object], device: str | torch.device = "cpu") -> float:
    """Peak memory above the current level while ``step()`` runs, in MiB (see
    :func:`mark_memory`)."""
    base = mark_memory(device)
    step()
    return peak_mib(device) - base


def mark_memory(device: str | torch.device = "cpu") -> float:
    """Reset the peak and return the memory in use now, in MiB: on CUDA the allocator's
    (``memory_allocated``), on CPU the process's resident size (the high-water mark reset)."""
    if str(device).startswith("cuda"):
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        return torch.cuda.memory_allocated() / 2**20
    reset_peak_rss()
    return status_mib("VmRSS")


def peak_mib(device: str | torch.device = "cpu") -> float:
    """The peak since the last :func:`mark_memory`, in MiB: ``max_memory_allocated`` on CUDA,
    the resident-size high-water mark (VmHWM) on CPU."""
    if str(device).startswith("cuda"):
        torch.cuda.synchronize()
        return torch.cuda.max_memory_allocated() / 2**20
    return status_mib("VmHWM")


def reset_peak_rss() -> None:
    """Reset the kernel's resident-size high-water mark (VmHWM) to the current size (Linux >=
    4.0), so a later peak is that of what runs next, not of imports or model construction."""
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")


def status_mib(field: str) -> float:
    """A size field of /proc/self/status (VmRSS: resident now, VmHWM: its peak) in MiB."""
    return _status_kib(field) / 1024


def _status_kib(field: str) -> int:
    """A size field of /proc/self/status (e.g. VmRSS, VmHWM) in KiB."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(f"{field}:"):
                return int(line.split()[1])
    raise RuntimeError(f"cannot read {field} from /proc/self/status (Linux only)")
