"""Measure backbone speed, memory and FLOPs over models, resolutions and batch sizes.

Every option takes comma-separated lists and the sweep runs their product, e.g.
  pe-dense benchmark --model PE-Spatial-T16-512,PE-Spatial-B16-512 --resolution 512,1024 \
      --batch-size 1,8 --attention global,windowed --compare timm --json out.json --plot plots/
Other encoders side by side in one table (any timm ViT family, as timm/<model name>):
  pe-dense benchmark --model PE-Spatial-S16-512,timm/vit_small_patch16_dinov3,\
timm/vit_small_patch14_dinov2 --resolution 448 --markdown encoders.md
(448 is a multiple of both 14 and 16; windowed attention is for PE variants only, and
--compare timm adds timm's vit_pe twin of the PE variants.)
Exported and compiled runtimes side by side (inference; outputs checked against eager):
  pe-dense benchmark --model PE-Spatial-B16-512 --resolution 512,1024 --compare timm \
      --runtime torch,onnxruntime,onnxruntime-int8,torch-compile --json b16_runtimes.json
Per-rank training memory under DDP and FSDP (each in a torchrun launch of --nproc processes):
  pe-dense benchmark --mode train --strategy ddp,fsdp --grad-checkpointing \
      --model PE-Spatial-B16-512,PE-Spatial-L14-448 --resolution 1024 --markdown mem.md
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import tempfile
import time

from pe_dense.cli.options import add_device_option

log = logging.getLogger(__name__)

def _csv(kind):
    return lambda text: [kind(v) for v in text.split(",") if v]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", type=_csv(str), default=["PE-Spatial-T16-512"],
                        help="comma list of PE variants and timm/<model name> encoders, e.g. "
                             "PE-Spatial-S16-512,timm/vit_small_patch16_dinov3 (default "
                             "%(default)s)")
    parser.add_argument("--resolution", type=_csv(int), default=[512])
    parser.add_argument("--batch-size", type=_csv(int), default=[1])
    parser.add_argument("--dtype", type=_csv(str), default=["fp32"], help="fp32,bf16,fp16")
    parser.add_argument("--attention", type=_csv(str), default=["global"],
                        help="global,windowed")
    parser.add_argument("--mode", type=_csv(str), default=["inference"], help="inference,train")
    parser.add_argument("--compile", action="store_true", help="torch.compile the forward")
    add_device_option(parser)
    parser.add_argument("--compare", choices=("timm",),
                        help="also measure timm's vit_pe twin of each PE variant (same weights)")
    parser.add_argument("--runtime", type=_csv(str), default=["torch"],
                        help="comma list of torch (eager), torch-compile, onnxruntime, "
                        "onnxruntime-int8: side by side in one table (ONNX ones export the "
                        "backbone first; pip install 'pe-dense[export]')")
    parser.add_argument("--export-dir", default=None,
                        help="where the ONNX runtimes' exported files go (default: a temp dir)")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--no-memory", action="store_true", help="skip peak-memory runs")
    parser.add_argument("--json", help="write all results to this JSON file")
    parser.add_argument("--csv", help="write all results to this CSV file")
    parser.add_argument("--markdown", help="write the table as Markdown to this file")
    parser.add_argument("--plot", help="write throughput/memory vs resolution plots here")
    parser.add_argument("--strategy", type=_csv(str), default=None,
                        help="ddp,fsdp: per-rank training memory (parameters, gradients, "
                        "optimiser state, step peak) with --nproc processes under torchrun "
                        "(needs --mode train)")
    parser.add_argument("--grad-checkpointing", action="store_true",
                        help="with --strategy: recompute block activations in backward")
    parser.add_argument("--nproc", type=int, default=2, help="processes per --strategy run")
    parser.add_argument("--steps", type=int, default=1, help="training steps per --strategy run")


@contextlib.contextmanager
def _exporter(runtimes: list[str], folder: str | None):
    """The ONNX exporter for ``runtimes`` (None when only PyTorch runs), writing to ``folder``
    or to a temporary folder removed afterwards."""
    from pe_dense.benchmark.runtimes import impl_of

    for runtime in runtimes:
        impl_of(runtime)  # a ValueError naming the valid runtimes
    if not any(r.startswith("onnxruntime") for r in runtimes):
        yield None
        return
    from pe_dense.export.bench import BenchmarkExporter
    from pe_dense.export.exporters import require_onnx

    require_onnx()
    with contextlib.ExitStack() as stack:
        target = folder or stack.enter_context(tempfile.TemporaryDirectory(prefix="pe-onnx-"))
        yield BenchmarkExporter(target)


def run_strategies(args: argparse.Namespace, device: str) -> int:
    """--strategy: one torchrun launch per case and strategy; a per-rank table."""
    from pathlib import Path

    from tqdm import tqdm

    from pe_dense.benchmark.report import make_cases
    from pe_dense.benchmark.strategies import (
        format_strategy_markdown,
        format_strategy_table,
        measure_strategy,
        strategy_rows,
    )
    from pe_dense.utils.io import atomic_write_text

    if args.mode != ["train"]:
        raise ValueError("--strategy measures training memory: pass --mode train")
    cases = make_cases(args.model, args.resolution, args.batch_size, ["fp32"], args.attention,
                       ["train"], False, device)
    rows = []
    for case, strategy in tqdm([(c, s) for c in cases for s in args.strategy],
                               desc="strategies", unit="run"):
        ranks = measure_strategy(case, strategy, args.nproc, args.grad_checkpointing, args.steps)
        rows += strategy_rows(case, strategy, args.grad_checkpointing, ranks)
    print(format_strategy_table(rows))
    if args.json:
        print(f"results in {atomic_write_text(Path(args.json), json.dumps(rows, indent=2))}")
    if args.markdown:
        out = atomic_write_text(Path(args.markdown), format_strategy_markdown(rows))
        print(f"results in {out}")
    return 0


def _compare_for(compare: str | None, case) -> str | None:
    """--compare timm applies to global-attention cases of PE variants (timm's vit_pe twin)."""
    from pe_dense.benchmark.core import TIMM_NAMES

    return compare if case.attention == "global" and case.model in TIMM_NAMES else None


def _note_no_twin(compare: str | None, models: list[str]) -> None:
    from pe_dense.benchmark.core import TIMM_NAMES

    alone = [m for m in models if m not in TIMM_NAMES]
    if compare and alone:
        log.info("--compare timm: %s %s no vit_pe twin in timm and %s measured alone",
                 ", ".join(alone), "has" if len(alone) == 1 else "have",
                 "is" if len(alone) == 1 else "are")


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from pe_dense.benchmark.report import format_table, make_cases, rows_of, write_results
    from pe_dense.benchmark.timing import run_case
    from pe_dense.cli.common import written_lines
    from pe_dense.utils.device import pick_device

    device = str(pick_device(args.device))
    if args.strategy:
        return run_strategies(args, device)
    cases = make_cases(args.model, args.resolution, args.batch_size, args.dtype, args.attention,
                       args.mode, args.compile, device)
    rows = []
    _note_no_twin(args.compare, args.model)
    with _exporter(args.runtime, args.export_dir) as exporter:
        for case in tqdm(cases, desc="benchmark", unit="case"):
            compare = _compare_for(args.compare, case)
            rows += rows_of(run_case(case, compare, args.warmup, args.repeats,
                                     not args.no_memory, args.runtime, exporter))
    print(format_table(rows))
    started = time.time() - 1.0
    for path in write_results(rows, args.json, args.markdown, args.csv, args.plot):
        print(f"plot: {path}")
    for target in (args.json, args.csv, args.markdown, args.plot):
        if target:
            print("\n".join(written_lines(target, started)))
    return 0 if all(r["status"] == "ok" for r in rows) else 1
