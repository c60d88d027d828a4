"""``--runtime torch|onnxruntime`` and ``--onnx PATH`` for features, predict and demo (no heavy
imports at module level)."""

from __future__ import annotations

import argparse
from typing import Any

__all__ = ["add_runtime_arguments", "open_runtime"]


def add_runtime_arguments(parser: argparse.ArgumentParser, what: str) -> None:
    """Add the two options; ``what`` says which export fits (for the help text)."""
    parser.add_argument("--runtime", default="torch", choices=("torch", "onnxruntime"),
                        help="torch (eager, default) or onnxruntime (CPU) running --onnx")
    parser.add_argument("--onnx", metavar="PATH",
                        help=f"with --runtime onnxruntime: {what} written by pe-dense export")


def open_runtime(args: argparse.Namespace) -> Any:
    """The ONNX Runtime session for ``--runtime onnxruntime --onnx PATH``, None for torch."""
    if args.runtime == "torch":
        if args.onnx:
            raise ValueError("--onnx runs with --runtime onnxruntime; add it (or drop --onnx)")
        return None
    if not args.onnx:
        raise ValueError("--runtime onnxruntime needs --onnx PATH (an .onnx file written by "
                         "pe-dense export)")
    from pe_dense.runtime import open_session

    return open_session(args.onnx, "onnxruntime")
