"""The exporter ``pe-dense benchmark --runtime onnxruntime[,onnxruntime-int8]`` hands to
:func:`pe_dense.benchmark.timing.run_case`: the case's backbone (``forward_features``) as ONNX
at the case's resolution with a dynamic batch, int8 quantised on request; files cached per
(model, attention, resolution, weights) in one folder for the run."""

from __future__ import annotations

import logging
from pathlib import Path

import torch

from pe_dense.benchmark.core import Case
from pe_dense.export.exporters import quantize_int8, to_onnx
from pe_dense.export.graphs import backbone_graph

__all__ = ["BenchmarkExporter"]

log = logging.getLogger(__name__)


class BenchmarkExporter:
    """``exporter(backbone, case, int8) -> path``; files are written under ``folder``."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)

    def __call__(self, backbone: torch.nn.Module, case: Case, int8: bool) -> str:
        # random weights differ per case: the file name carries a weight fingerprint
        with torch.no_grad():
            stamp = sum(float(p.double().abs().sum()) for p in backbone.parameters())
        stem = f"{case.model.replace('/', '_')}_{case.attention}_{case.resolution}_{stamp:.6e}"
        fp32 = self.folder / f"{stem}.onnx"
        graph, spec = backbone_graph(backbone.cpu().eval(), None, case.model)
        side = case.resolution // backbone.patch_size * backbone.patch_size
        spec.resolution = (side, side)
        if not fp32.is_file():
            log.info("exporting %s to %s", stem, fp32)
            example = torch.zeros(2, 3, side, side)
            to_onnx(graph, spec, example, fp32, dynamic="batch")
        if not int8:
            return str(fp32)
        path = self.folder / f"{stem}.int8.onnx"
        if not path.is_file():
            quantize_int8(fp32, path, spec)
        return str(path)
