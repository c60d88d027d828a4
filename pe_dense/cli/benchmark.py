"""Measure backbone speed, memory and FLOPs over models, resolutions and batch sizes.

Every option takes comma-separated lists and the sweep runs their product, e.g.
  pe-dense benchmark --model PE-Spatial-T16-512,PE-Spatial-B16-512 --resolution 512,1024 \
      --batch-size 1,8 --attention global,windowed --compare timm --json out.json --plot plots/
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
import math
from pathlib import Path

log = logging.getLogger(__name__)

COLUMNS = [("impl", "impl", "s"), ("model", "model", "s"), ("resolution", "res", "d"),
           ("batch_size", "batch", "d"), ("dtype", "dtype", "s"), ("attention", "attn", "s"),
           ("mode", "mode", "s"), ("compile", "compile", "s"), ("latency_ms", "ms (med)", ".1f"),
           ("latency_p90_ms", "ms (p90)", ".1f"), ("images_per_s", "img/s", ".2f"),
           ("tokens_per_s", "tok/s", ".0f"), ("peak_mem_mb", "peak MiB", ".0f"),
           ("gflops", "GFLOP", ".1f"), ("params_m", "params M", ".1f"), ("status", "status", "s")]


def _csv(kind):
    return lambda text: [kind(v) for v in text.split(",") if v]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", type=_csv(str), default=["PE-Spatial-T16-512"])
    parser.add_argument("--resolution", type=_csv(int), default=[512])
    parser.add_argument("--batch-size", type=_csv(int), default=[1])
    parser.add_argument("--dtype", type=_csv(str), default=["fp32"], help="fp32,bf16,fp16")
    parser.add_argument("--attention", type=_csv(str), default=["global"],
                        help="global,windowed")
    parser.add_argument("--mode", type=_csv(str), default=["inference"], help="inference,train")
    parser.add_argument("--compile", action="store_true", help="torch.compile the forward")
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cuda if present)")
    parser.add_argument("--compare", choices=("timm",), help="also measure timm's vit_pe model")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--no-memory", action="store_true", help="skip peak-memory runs")
    parser.add_argument("--json", help="write all results to this JSON file")
    parser.add_argument("--csv", help="write all results to this CSV file")
    parser.add_argument("--markdown", help="write the table as Markdown to this file")
    parser.add_argument("--plot", help="write throughput/memory vs resolution plots here")


def run(args: argparse.Namespace) -> int:
    import torch
    from tqdm import tqdm

    from pe_dense.benchmark.core import Case, run_case

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError("--device cuda but no CUDA device is available; use --device cpu")
    cases = [Case(m, r, b, d, a, args.compile, device, mo) for m, r, b, d, a, mo in
             itertools.product(args.model, args.resolution, args.batch_size, args.dtype,
                               args.attention, args.mode)]
    rows = []
    for case in tqdm(cases, desc="benchmark", unit="case"):
        compare = args.compare if case.attention == "global" else None
        results = run_case(case, compare, args.warmup, args.repeats, not args.no_memory)
        rows += [r.row() for r in results]
        if len(results) == 2 and results[0].status == "ok" == results[1].status:
            ours, theirs = results
            rows[-1]["speedup_vs_timm"] = ours.images_per_s / theirs.images_per_s
            rows[-1]["memory_ratio_vs_timm"] = ours.peak_mem_mb / theirs.peak_mem_mb
    print(format_table(rows))
    _write_outputs(rows, args)
    return 0 if all(r["status"] == "ok" for r in rows) else 1


def format_table(rows: list[dict]) -> str:
    """A fixed-width console table; timm rows carry our/their ratios and output agreement."""
    cols = [c for c in COLUMNS if any(c[0] in r for r in rows)]
    header = "  ".join(f"{title:>9s}" if fmt != "s" else f"{title:<9s}" for _, title, fmt in cols)
    lines = [header, "-" * len(header)]
    for r in rows:
        cells = []
        for key, _, fmt in cols:
            v = r.get(key)
            if fmt == "s":
                cells.append(f"{v!s:<9s}")
            else:
                cells.append(f"{v:>9{fmt}}" if v is not None and not _nan(v) else f"{'-':>9s}")
        line = "  ".join(cells)
        if "speedup_vs_timm" in r:
            line += (f"  ours/timm: speed x{r['speedup_vs_timm']:.2f}, memory "
                     f"x{r['memory_ratio_vs_timm']:.2f}, max |diff| {r['max_abs_diff']:.1e}")
        lines.append(line)
    return "\n".join(lines)


def format_markdown(rows: list[dict]) -> str:
    """The results as a Markdown table (for docs/benchmarks.md)."""
    keys = [("impl", "impl"), ("model", "model"), ("resolution", "res"), ("batch_size", "batch"),
            ("attention", "attention"), ("mode", "mode"), ("latency_ms", "ms (median)"),
            ("latency_p90_ms", "ms (p90)"), ("images_per_s", "img/s"),
            ("peak_mem_mb", "peak MiB"), ("gflops", "GFLOP"), ("status", "status")]
    extra = [("speedup_vs_timm", "ours/timm speed"), ("memory_ratio_vs_timm", "ours/timm memory"),
             ("max_abs_diff", "max abs diff")]
    keys += [k for k in extra if any(k[0] in r for r in rows)]
    lines = ["| " + " | ".join(t for _, t in keys) + " |", "|" + "---|" * len(keys)]
    for r in rows:
        cells = []
        for key, _ in keys:
            v = r.get(key)
            if key == "max_abs_diff" and v is not None:
                cells.append(f"{v:.1e}")
            elif key.endswith("_vs_timm") and v is not None:
                cells.append(f"x{v:.2f}")
            elif isinstance(v, float):
                cells.append("-" if math.isnan(v) else f"{v:.3g}" if abs(v) < 1 else f"{v:.1f}")
            else:
                cells.append("" if v is None else str(v))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _nan(v) -> bool:
    return isinstance(v, float) and math.isnan(v)


def _write_outputs(rows: list[dict], args: argparse.Namespace) -> None:
    from pe_dense.utils.io import atomic_write_text

    if args.json:
        atomic_write_text(args.json, json.dumps(rows, indent=2, default=str))
    if args.markdown:
        atomic_write_text(args.markdown, format_markdown(rows) + "\n")
    if args.csv:
        keys = list(dict.fromkeys(k for r in rows for k in r))
        lines = [",".join(keys)] + [",".join(str(r.get(k, "")) for k in keys) for r in rows]
        atomic_write_text(args.csv, "\n".join(lines) + "\n")
    if args.plot:
        from pe_dense.benchmark.core import plot_results

        for path in plot_results(rows, Path(args.plot)):
            print(f"plot: {path}")
