"""``--runtime torch|onnxruntime`` and ``--onnx PATH`` (kept for the commands that import them
from here; declared once in :mod:`pe_dense.cli.options`)."""

from __future__ import annotations

from pe_dense.cli.options import add_runtime_options as add_runtime_arguments
from pe_dense.cli.options import open_runtime

__all__ = ["add_runtime_arguments", "open_runtime"]
