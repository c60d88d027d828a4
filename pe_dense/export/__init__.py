"""Export PE backbones and task models to ONNX (``torch.onnx.export``, dynamo exporter) and to
``torch.export`` programs (``.pt2``), with dynamic height/width, int8 (ONNX Runtime dynamic
quantisation) and a verification against eager PyTorch right after writing.

``onnx`` / ``onnxruntime`` / ``onnxscript`` come with ``pip install 'pe-dense[export]'`` and are
imported only inside the functions that need them.
"""

from pe_dense.export.api import ExportResult, export_model
from pe_dense.export.graphs import GraphSpec, backbone_graph, task_graph

__all__ = ["export_model", "ExportResult", "GraphSpec", "backbone_graph", "task_graph"]
