"""``InferenceSession``: tensors in, list of tensors out, whatever executes the graph.

``open_session(source)``: an ``.onnx`` file runs in ONNX Runtime (CPU), a ``.pt2`` file is a
``torch.export`` ExportedProgram, an ``nn.Module`` / callable runs in eager PyTorch. The graph
metadata (what the graph computes, see :class:`pe_dense.export.graphs.GraphSpec`; read here as a
plain dict so this layer does not depend on export) is available as ``session.spec``.
"""

from __future__ import annotations

import json
import logging
import os
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

__all__ = ["InferenceSession", "open_session", "read_spec", "RUNTIMES"]

log = logging.getLogger(__name__)

RUNTIMES = ("torch", "onnxruntime", "torch-export")
METADATA_KEY = "pe_dense"


def _ort():
    try:
        import onnxruntime
    except ImportError as exc:
        raise ImportError("--runtime onnxruntime needs onnxruntime: "
                          "pip install 'pe-dense[export]'") from exc
    return onnxruntime


class InferenceSession:
    """``session(x) -> list of tensors``; ``x``: (B, 3, H, W) float32 tensor (CPU for ONNX
    Runtime). ``runtime``: torch | onnxruntime | torch-export; ``spec``: the graph metadata dict
    ({} when the source has none); ``output_names``."""

    def __init__(self, run: Callable[[torch.Tensor], list[torch.Tensor]], runtime: str,
                 spec: dict[str, Any] | None = None, output_names: Sequence[str] = (),
                 source: str = "") -> None:
        self._run, self.runtime = run, runtime
        self.spec = dict(spec or {})
        self.output_names = list(output_names or self.spec.get("outputs", []))
        self.source = source

    def __call__(self, x: torch.Tensor) -> list[torch.Tensor]:
        self.check_input(x)
        return self._run(x)

    def check_input(self, x: torch.Tensor) -> None:
        """A ``ValueError`` saying what to do when ``x`` does not fit the graph."""
        if x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"expected x of shape (B, 3, H, W), got {tuple(x.shape)}")
        d = int(self.spec.get("size_divisor", 1))
        h, w = int(x.shape[-2]), int(x.shape[-1])
        if h % d or w % d:
            raise ValueError(f"input {h}x{w} is not a multiple of {d} (this graph's size "
                             f"divisor); resize or pad to {-(-h // d) * d}x{-(-w // d) * d}")
        fixed = tuple(self.spec.get("resolution", (0, 0)))
        if self.spec and not self.spec.get("dynamic") and fixed != (h, w):
            raise ValueError(f"{self.source} was exported for {fixed[0]}x{fixed[1]} inputs, got "
                             f"{h}x{w}: use --resolution {fixed[0]} (square inputs), or "
                             "re-export with --dynamic")

    def __repr__(self) -> str:
        return f"InferenceSession({self.runtime}, {self.source or 'module'})"


def read_spec(path: str | os.PathLike) -> dict[str, Any]:
    """The ``pe_dense`` metadata of an ``.onnx`` or ``.pt2`` file ({} when absent)."""
    path = Path(path)
    if path.suffix == ".onnx":
        sess = _ort().InferenceSession(str(path), providers=["CPUExecutionProvider"])
        text = sess.get_modelmeta().custom_metadata_map.get(METADATA_KEY)
        return json.loads(text) if text else {}
    with zipfile.ZipFile(path) as archive:
        names = [n for n in archive.namelist() if n.endswith("extra/pe_dense.json")]
        return json.loads(archive.read(names[0])) if names else {}


def open_session(source: Any, runtime: str | None = None, threads: int | None = None,
                 spec: dict[str, Any] | None = None) -> InferenceSession:
    """An :class:`InferenceSession` for ``source``: a path (``.onnx`` -> ONNX Runtime, ``.pt2``
    -> ExportedProgram) or an ``nn.Module`` / callable returning a tensor or a tuple of tensors
    (eager PyTorch). ``threads``: ONNX Runtime intra-op threads (default: torch's)."""
    if not isinstance(source, str | os.PathLike):
        return InferenceSession(_torch_run(source), "torch", spec)
    path = Path(source)
    if not path.is_file():
        raise FileNotFoundError(f"exported model {path} does not exist: write one with "
                                "pe-dense export")
    kind = runtime or {".onnx": "onnxruntime", ".pt2": "torch-export"}.get(path.suffix)
    if kind == "onnxruntime" and path.suffix == ".onnx":
        return _ort_session(path, threads)
    if kind == "torch-export" and path.suffix == ".pt2":
        program = torch.export.load(str(path))
        return InferenceSession(_torch_run(program.module()), "torch-export", read_spec(path),
                                source=str(path))
    raise ValueError(f"cannot run {path} with runtime {runtime!r}: .onnx files run in "
                     "onnxruntime, .pt2 files in torch-export")


def _torch_run(fn: Callable) -> Callable[[torch.Tensor], list[torch.Tensor]]:
    def run(x: torch.Tensor) -> list[torch.Tensor]:
        with torch.inference_mode():
            out = fn(x)
        return list(out) if isinstance(out, tuple | list) else [out]

    return run


def _ort_session(path: Path, threads: int | None) -> InferenceSession:
    ort = _ort()
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or torch.get_num_threads()
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # No busy-waiting of idle pool threads after a run: they would steal the cores from
    # whatever runs next (PyTorch in the same process, e.g. interleaved benchmark timing).
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    try:
        sess = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own exception types
        raise ValueError(f"ONNX Runtime {ort.__version__} cannot load {path}: "
                         f"{str(exc).splitlines()[0][:300]}") from exc
    text = sess.get_modelmeta().custom_metadata_map.get(METADATA_KEY)
    input_name = sess.get_inputs()[0].name
    names = [o.name for o in sess.get_outputs()]

    def run(x: torch.Tensor) -> list[torch.Tensor]:
        feed = {input_name: np.ascontiguousarray(x.detach().cpu().float().numpy())}
        return [torch.from_numpy(a) for a in sess.run(None, feed)]

    return InferenceSession(run, "onnxruntime", json.loads(text) if text else {}, names,
                            source=str(path))
