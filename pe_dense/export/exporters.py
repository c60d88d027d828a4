"""Write a graph (see :mod:`pe_dense.export.graphs`) as ONNX or as a ``torch.export`` program,
and quantise ONNX models to int8. Each function writes exactly the path it is given; the
atomic write-verify-rename sequence is :func:`pe_dense.export.api.export_model`'s."""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from pathlib import Path

import torch
from torch import nn

from pe_dense.export.graphs import GraphSpec

__all__ = ["to_onnx", "to_program", "quantize_int8", "dynamic_shapes", "MIN_OPSET",
           "DEFAULT_OPSET", "require_onnx"]

log = logging.getLogger(__name__)

MIN_OPSET = 17  # LayerNormalization is an ONNX operator from opset 17 on
DEFAULT_OPSET = 18  # the dynamo exporter's own lowest opset (no version conversion)
METADATA_KEY = "pe_dense"


@contextlib.contextmanager
def _quiet(*names: str) -> Iterator[None]:
    """Raise the named loggers ("" the root) to ERROR while the block runs."""
    loggers = [logging.getLogger(name or None) for name in names]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)


def require_onnx() -> None:
    """Raise an ``ImportError`` naming the extra when onnx / onnxscript are missing."""
    try:
        import onnx  # noqa: F401
        import onnxscript  # noqa: F401
    except ImportError as exc:
        raise ImportError(f"ONNX export needs onnx and onnxscript ({exc.name} is missing): "
                          "pip install 'pe-dense[export]'") from exc


def dynamic_shapes(spec: GraphSpec, spatial: bool = True) -> dict[str, dict[int, object]]:
    """Batch, height and width (``spatial``; else the batch only) of ``x`` as dynamic
    dimensions; H and W stay multiples of the graph's size divisor (``H = size_divisor *
    rows``)."""
    from torch.export import Dim

    if not spatial:
        return {"x": {0: Dim("batch", min=1, max=1024)}}
    d = spec.size_divisor
    rows = Dim("rows", min=1, max=8192 // d)
    cols = Dim("cols", min=1, max=8192 // d)
    return {"x": {0: Dim("batch", min=1, max=1024), 2: d * rows, 3: d * cols}}


def _trace_error(exc: Exception, spec: GraphSpec, dynamic: bool) -> RuntimeError:
    text = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    keys = ("Not all values", "specialized it", "Constraints violated")
    useful = [line for line in text if line.startswith(keys) or line.startswith("- Not all")]
    first = (useful or text or [type(exc).__name__])[0][:400]
    if dynamic and any(k in str(exc) for k in ("Constraint", "specializ", "Guard", "guard")):
        return RuntimeError(
            f"--dynamic: a part of the {spec.kind} graph fixes the input height/width and cannot "
            f"be dynamic ({first}); export without --dynamic at the --resolution you need")
    return RuntimeError(f"exporting the {spec.kind} graph failed: {type(exc).__name__}: {first}")


def to_onnx(graph: nn.Module, spec: GraphSpec, example: torch.Tensor, path: str | os.PathLike,
            dynamic: bool | str = False, opset: int = DEFAULT_OPSET) -> Path:
    """Export ``graph`` with ``torch.onnx.export(dynamo=True)`` to ``path`` (one file, weights
    inside), input ``x``, outputs ``spec.outputs``, ``spec`` stored as metadata ``pe_dense``.
    ``dynamic``: True for dynamic batch, height and width, ``"batch"`` for the batch only.

    Raises ``ValueError`` for an opset below :data:`MIN_OPSET` or one the exporter cannot
    target, ``RuntimeError`` when tracing fails (naming the part that is not dynamic).
    """
    require_onnx()
    if dynamic is True:
        _check_onnx_dynamic(graph, spec)
    if opset < MIN_OPSET:
        raise ValueError(f"--opset {opset} does not support LayerNormalization (ONNX opset 17+); "
                         f"use --opset {DEFAULT_OPSET} (the default) or newer")
    try:
        with _quiet("onnx_ir", "onnxscript"):  # they log every optimisation pass at INFO
            program = torch.onnx.export(
                graph, (example,), dynamo=True, opset_version=opset, input_names=["x"],
                output_names=list(spec.outputs), verbose=False,
                dynamic_shapes=dynamic_shapes(spec, dynamic is True) if dynamic else None)
    except Exception as exc:  # torch raises many types here; report the first line
        raise _trace_error(exc, spec, bool(dynamic)) from exc
    got = {o.domain: o.version for o in _opset_imports(program)}.get("", opset)
    if got != opset:
        raise ValueError(f"--opset {opset}: the exporter could not express the graph in opset "
                         f"{opset} (it produced opset {got}); use --opset {got}")
    program.model.metadata_props[METADATA_KEY] = spec.to_json()
    program.save(str(path), external_data=False)
    return Path(path)


def _check_onnx_dynamic(graph: nn.Module, spec: GraphSpec) -> None:
    """Parts whose ONNX form fixes the input size: adaptive pooling to more than one cell
    (UPerNet's pyramid pooling) becomes an AveragePool with the traced kernel size."""
    for name, module in graph.named_modules():
        if isinstance(module, nn.AdaptiveAvgPool2d | nn.AdaptiveMaxPool2d):
            size = module.output_size
            if (size if isinstance(size, int) else max(s or 1 for s in size)) > 1:
                where = name.removeprefix("model.")
                raise ValueError(
                    f"--dynamic: {where} ({type(module).__name__} to {size}, e.g. UPerNet's "
                    f"pyramid pooling) cannot be dynamic in ONNX (its kernel is fixed by the "
                    f"traced size); export the {spec.kind} model without --dynamic at the "
                    "--resolution you run (or use --format torch, which keeps it dynamic)")


def _opset_imports(program) -> list:
    import onnx

    proto = program.model_proto
    return list(proto.opset_import) if isinstance(proto, onnx.ModelProto) else []


def to_program(graph: nn.Module, spec: GraphSpec, example: torch.Tensor,
               path: str | os.PathLike, dynamic: bool | str = False) -> Path:
    """``torch.export.export`` the graph and save the ExportedProgram (``.pt2``) with ``spec``
    as the extra file ``pe_dense.json``; ``dynamic`` as in :func:`to_onnx`."""
    try:
        program = torch.export.export(
            graph, (example,),
            dynamic_shapes=dynamic_shapes(spec, dynamic is True) if dynamic else None)
    except Exception as exc:
        raise _trace_error(exc, spec, bool(dynamic)) from exc
    torch.export.save(program, str(path), extra_files={"pe_dense.json": spec.to_json()})
    return Path(path)


def quantize_int8(src: str | os.PathLike, dst: str | os.PathLike, spec: GraphSpec) -> Path:
    """ONNX Runtime dynamic quantisation: MatMul / Gemm weights to int8 (per channel),
    activations quantised on the fly; matmuls between two activations (attention) stay fp32.
    The metadata is copied with ``int8=True``."""
    try:
        import onnx
        from onnxruntime.quantization import QuantType, quantize_dynamic
    except ImportError as exc:
        raise ImportError("--int8 needs onnxruntime: pip install 'pe-dense[export]'") from exc
    with _quiet(""):  # onnxruntime.quantization logs every tensor on the root logger
        quantize_dynamic(str(src), str(dst), weight_type=QuantType.QInt8, per_channel=True,
                         op_types_to_quantize=["MatMul", "Gemm"],
                         extra_options={"MatMulConstBOnly": True})
    model = onnx.load(str(dst))
    spec_int8 = GraphSpec.from_json(spec.to_json())
    spec_int8.int8 = True
    _set_metadata(model, spec_int8)
    onnx.save(model, str(dst))
    return Path(dst)


def _set_metadata(model, spec: GraphSpec) -> None:
    for prop in list(model.metadata_props):
        if prop.key == METADATA_KEY:
            model.metadata_props.remove(prop)
    entry = model.metadata_props.add()
    entry.key, entry.value = METADATA_KEY, spec.to_json()
