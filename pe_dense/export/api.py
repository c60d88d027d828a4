"""``export_model``: graph -> file -> verified against eager PyTorch -> renamed into place.

The file is written under a temporary name beside ``out`` and only renamed to ``out`` after
the verification passed, so a failed export (bad size, opset, tracing error, outputs beyond the
tolerance) leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from pe_dense.backbone.contract import Backbone
from pe_dense.backbone.inputs import normalize
from pe_dense.data.images import to_tensor
from pe_dense.export.exporters import DEFAULT_OPSET, quantize_int8, to_onnx, to_program
from pe_dense.export.graphs import GraphSpec, backbone_graph, task_graph
from pe_dense.runtime.session import open_session
from pe_dense.utils.io import atomic_path

__all__ = ["export_model", "ExportResult", "Check", "compare_outputs", "verify_inputs",
           "FORMATS"]

log = logging.getLogger(__name__)

FORMATS = {"onnx": ".onnx", "torch": ".pt2"}


@dataclass
class Check:
    """One verification run: ``name`` of the input, its ``shape``, and the agreement of all
    outputs with eager PyTorch (``max_abs``, ``rel`` = max_abs / max |eager|, ``cosine``)."""

    name: str
    shape: tuple[int, ...]
    max_abs: float
    rel: float
    cosine: float

    def line(self) -> str:
        return (f"{self.name:<14s} {'x'.join(str(s) for s in self.shape):<14s} max abs "
                f"{self.max_abs:.2e}  rel {self.rel:.2e}  cosine {self.cosine:.6f}")


@dataclass
class ExportResult:
    """What :func:`export_model` wrote and how it compared with eager PyTorch."""

    path: Path
    spec: GraphSpec
    checks: list[Check]
    seconds: float
    int8_path: Path | None = None
    int8_checks: list[Check] = field(default_factory=list)


def compare_outputs(ref: list[torch.Tensor], got: list[torch.Tensor], name: str) -> Check:
    """Agreement of two lists of output tensors (shapes must match)."""
    if len(ref) != len(got) or any(r.shape != g.shape for r, g in zip(ref, got, strict=False)):
        raise RuntimeError(f"{name}: output shapes {[tuple(g.shape) for g in got]} differ from "
                           f"eager {[tuple(r.shape) for r in ref]}")
    a = torch.cat([r.detach().float().flatten().cpu() for r in ref])
    b = torch.cat([g.detach().float().flatten().cpu() for g in got])
    max_abs = (a - b).abs().max().item()
    rel = max_abs / max(a.abs().max().item(), 1e-12)
    cosine = torch.nn.functional.cosine_similarity(a.double(), b.double(), dim=0).item()
    return Check(name, (), max_abs, rel, cosine)


def verify_inputs(spec: GraphSpec, image: np.ndarray | None = None
                  ) -> list[tuple[str, torch.Tensor]]:
    """Inputs for the verification: a random and a real image (``image`` or the built-in
    sample scene) at the export size; with ``dynamic`` also a batch of 2 at another size."""
    from PIL import Image

    from pe_dense.data.samples import sample_image

    h, w = spec.resolution
    gen = torch.Generator().manual_seed(0)
    real = Image.fromarray(image if image is not None else sample_image()).resize((w, h))
    inputs = [("random", torch.rand(1, 3, h, w, generator=gen) * 2 - 1),
              ("image", normalize(to_tensor(np.asarray(real))[None], None, spec.input_mean,
                                  spec.input_std))]
    if spec.dynamic:
        d = spec.size_divisor
        inputs.append(("random-other", torch.rand(2, 3, h + d, max(d, w - d), generator=gen)
                       * 2 - 1))
    return inputs


def _example(spec: GraphSpec) -> torch.Tensor:
    """The tracing input: a batch of 2 (a traced size of 1 would be fixed), at the export size
    or, for dynamic exports, at least 2 x the size divisor per side (so that even the coarsest
    map, e.g. the detector's p6, is not 1 x 1 when traced)."""
    h, w = spec.resolution
    if spec.dynamic:
        h, w = max(h, 2 * spec.size_divisor), max(w, 2 * spec.size_divisor)
    gen = torch.Generator().manual_seed(1)
    return torch.rand(2, 3, h, w, generator=gen) * 2 - 1


def _verify(graph: nn.Module, path: Path, inputs: list[tuple[str, torch.Tensor]]
            ) -> list[Check]:
    session = open_session(path)
    checks = []
    for name, x in inputs:
        with torch.no_grad():
            ref = list(graph(x))
        check = compare_outputs(ref, session(x), name)
        check.shape = tuple(x.shape)
        checks.append(check)
    return checks


def _check_request(fmt: str, out: Path, resolution: tuple[int, int], divisor: int,
                   int8: bool) -> None:
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}: use one of {', '.join(FORMATS)}")
    if out.suffix != FORMATS[fmt]:
        raise ValueError(f"--out {out}: a {fmt} export is written as {FORMATS[fmt]}; name the "
                         f"file {out.with_suffix(FORMATS[fmt]).name}")
    if int8 and fmt != "onnx":
        raise ValueError("--int8 quantises ONNX models: use --format onnx")
    h, w = resolution
    if h <= 0 or w <= 0 or h % divisor or w % divisor:
        h2, w2 = (max(divisor, round(v / divisor) * divisor) for v in (h, w))
        raise ValueError(f"--resolution {h},{w} is not a multiple of {divisor} (this model's "
                         f"patch size / size divisor); nearest valid {h2},{w2}")


def export_model(model: nn.Module, out: str | os.PathLike, fmt: str = "onnx",
                 resolution: tuple[int, int] = (512, 512), dynamic: bool = False,
                 layers: list[int] | None = None, int8: bool = False, opset: int = DEFAULT_OPSET,
                 image: np.ndarray | None = None, source: str = "", tol: float = 1e-4,
                 random_weights: bool = False) -> ExportResult:
    """Export ``model`` (a backbone, or a task model: segmentation, depth, detection, ...) to
    ``out`` and verify it. ``fmt``: onnx | torch (``.pt2``); ``layers``: backbone blocks to export
    as maps (None: the last block's tokens); ``int8``: also write ``<out stem>.int8.onnx``.

    Raises ``ValueError`` for a bad request or fp32 outputs beyond ``tol`` relative error (no
    file written), ``RuntimeError`` when tracing fails, ``ImportError`` without the extra.
    """
    start, out = time.perf_counter(), Path(out)
    model = model.cpu().eval()
    if isinstance(model, Backbone):
        graph, spec = backbone_graph(model, layers, source)
    else:
        if layers is not None:
            raise ValueError("--layers is for PE variants; task models export their network")
        graph, spec = task_graph(model, source)
    _check_request(fmt, out, resolution, spec.size_divisor, int8)
    spec.resolution, spec.dynamic, spec.random_weights = tuple(resolution), dynamic, random_weights
    inputs = verify_inputs(spec, image)
    example = _example(spec)
    int8_path = out.with_name(f"{out.stem}.int8.onnx") if int8 else None
    with contextlib.ExitStack() as stack:
        tmp = stack.enter_context(atomic_path(out))
        axes = True if dynamic else "batch"  # the batch is always dynamic
        if fmt == "onnx":
            to_onnx(graph, spec, example, tmp, axes, opset)
        else:
            to_program(graph, spec, example, tmp, axes)
        checks = _verify(graph, tmp, inputs)
        worst = max(checks, key=lambda c: c.rel)
        if worst.rel > tol:
            raise ValueError(f"the exported model differs from eager PyTorch beyond {tol:g} "
                             f"relative ({worst.line()}); nothing was written")
        int8_checks = []
        if int8_path is not None:
            tmp8 = stack.enter_context(atomic_path(int8_path))
            quantize_int8(tmp, tmp8, spec)
            int8_checks = _verify(graph, tmp8, inputs)
    return ExportResult(out, spec, checks, time.perf_counter() - start, int8_path, int8_checks)
