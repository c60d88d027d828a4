"""Measure backbone speed, memory and FLOPs over models, resolutions and batch sizes.

Every option takes comma-separated lists and the sweep runs their product, e.g.
  pe-dense benchmark --model PE-Spatial-T16-512,PE-Spatial-B16-512 --resolution 512,1024 \
      --batch-size 1,8 --attention global,windowed --compare timm --json out.json --plot plots/
"""

from __future__ import annotations

import argparse
import logging

log = logging.getLogger(__name__)

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
    from tqdm import tqdm

    from pe_dense.benchmark.report import format_table, make_cases, rows_of, write_results
    from pe_dense.benchmark.timing import run_case
    from pe_dense.utils.device import pick_device

    device = str(pick_device(args.device))
    cases = make_cases(args.model, args.resolution, args.batch_size, args.dtype, args.attention,
                       args.mode, args.compile, device)
    rows = []
    for case in tqdm(cases, desc="benchmark", unit="case"):
        compare = args.compare if case.attention == "global" else None
        rows += rows_of(run_case(case, compare, args.warmup, args.repeats, not args.no_memory))
    print(format_table(rows))
    for path in write_results(rows, args.json, args.markdown, args.csv, args.plot):
        print(f"plot: {path}")
    return 0 if all(r["status"] == "ok" for r in rows) else 1
