"""Runtimes besides eager PyTorch in one benchmark run: ``torch-compile`` (inductor) and
exported ONNX models in ONNX Runtime (``onnxruntime``, ``onnxruntime-int8``).

The benchmark layer does not export models itself: the caller passes an ``exporter(model,
case, int8) -> path of an .onnx file`` (the CLI passes one built on :mod:`pe_dense.export`).
Outputs of every runtime are checked against eager PyTorch on the first image (max abs diff,
relative diff, cosine).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from pe_dense.benchmark.core import Case, Result
from pe_dense.runtime.session import open_session

__all__ = ["RUNTIME_IMPLS", "Exporter", "runtime_steps", "impl_of"]

# --runtime value -> the ``impl`` name of its results (eager PyTorch keeps "pe_dense")
RUNTIME_IMPLS = {"torch": "pe_dense", "torch-compile": "torch-compile",
                 "onnxruntime": "onnxruntime", "onnxruntime-int8": "onnxruntime-int8"}
Exporter = Callable[[torch.nn.Module, Case, bool], str]


def impl_of(runtime: str) -> str:
    if runtime not in RUNTIME_IMPLS:
        raise ValueError(f"unknown runtime {runtime!r}: use {', '.join(RUNTIME_IMPLS)}")
    return RUNTIME_IMPLS[runtime]


def _agreement(ref: torch.Tensor, got: torch.Tensor) -> dict:
    a, b = ref.detach().float().flatten(), got.detach().float().flatten()
    diff = (a - b).abs().max().item()
    return {"max_abs_diff": diff, "rel_diff": diff / max(a.abs().max().item(), 1e-12),
            "cosine": torch.nn.functional.cosine_similarity(a.double(), b.double(), 0).item()}


def runtime_steps(case: Case, ours: torch.nn.Module, x: torch.Tensor, runtimes: list[str],
                  exporter: Exporter | None, results: dict[str, Result]
                  ) -> dict[str, Callable[[], None]]:
    """Iteration steps of the non-eager ``runtimes`` (inference only); records each one's
    output agreement with eager PyTorch in ``results[impl]`` (``max_abs_diff``, ``extra``)
    and, for ONNX runtimes, the model file in ``extra["onnx"]``."""
    steps: dict[str, Callable[[], None]] = {}
    if any(r != "torch" for r in runtimes) and case.mode != "inference":
        raise ValueError("--runtime other than torch measures inference only (--mode inference)")
    with torch.inference_mode():
        ref = ours.forward_features(x[:1])
    for runtime in runtimes:
        impl = impl_of(runtime)
        if runtime == "torch":
            continue
        if runtime == "torch-compile":
            fn = torch.compile(ours.forward_features, dynamic=False)
        else:
            if exporter is None:
                raise ValueError(f"--runtime {runtime} needs an exporter (pe-dense benchmark "
                                 "passes one; install pe-dense[export])")
            path = exporter(ours, case, runtime.endswith("int8"))
            results[impl].extra["onnx"] = path
            session = open_session(path, threads=torch.get_num_threads())
            fn = _first(session)
        with torch.inference_mode():
            got = fn(x[:1]) if runtime != "torch-compile" else fn(x)[:1]
        agreement = _agreement(ref, got)
        results[impl].max_abs_diff = agreement.pop("max_abs_diff")
        results[impl].extra.update(agreement)
        steps[impl] = _step(fn, x)
    return steps


def _first(session) -> Callable[[torch.Tensor], torch.Tensor]:
    return lambda x: session(x)[0]


def _step(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> Callable[[], None]:
    def run() -> None:
        with torch.inference_mode():
            fn(x)

    return run
