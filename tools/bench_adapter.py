"""Overhead of the timm adapter: timm's own ``forward_intermediates`` against
:class:`pe_dense.backbone.timm_adapter.TimmBackbone.forward_intermediates` on the same model.

For each ``--cases`` entry ``NAME:SIZE`` (a timm model name and a square input side, a multiple
of its patch) one model is built with random weights (``create_backbone("timm/NAME")``, eval
mode, float32) and one batch of random uint8 images is normalised with the model's own
statistics. Two calls read the same blocks (``--indices``, default: the four evenly spaced
blocks a DPT head or a pyramid reads, e.g. 2, 5, 8, 11 of 12) as NCHW maps under
``torch.inference_mode``:

- ``timm``: ``backbone.model.forward_intermediates(x, indices=..., norm=False,
  output_fmt="NCHW", intermediates_only=True, stop_early=True)`` (timm's own method, the call
  the adapter makes);
- ``adapter``: ``backbone.forward_intermediates(x, indices=..., output_fmt="NCHW")`` (the
  backbone contract: index check, input check, the same timm call, maps in the asked order).

Both outputs are checked to be identical first. Then ``--warmup`` rounds and ``--repeats``
timed rounds; each round runs both calls back to back, the order alternating between rounds,
so drift of a shared machine hits both alike. Reported per case: the median time of each, their
ratio (adapter / timm) and the median of the per-round ratios; the target of issue 25 is a
ratio <= 1.02. The load average and CPU seconds of the run are recorded. Results: a table on
stdout and ``--out`` (JSON), rewritten atomically after every case. Usage::

    OMP_NUM_THREADS=4 python tools/bench_adapter.py --threads 4 \\
        [--cases vit_small_patch16_dinov3:512,vit_base_patch14_dinov2:518] [--repeats 20] \\
        [--out work_dirs/bench_adapter.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CASES = "vit_small_patch16_dinov3:512,vit_base_patch14_dinov2:518"
TARGET = 1.02


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", default=DEFAULT_CASES,
                        help="comma list of timm_model_name:side (default %(default)s)")
    parser.add_argument("--indices", default="dpt",
                        help="'dpt' (four evenly spaced blocks), 'last', or a comma list")
    parser.add_argument("--batch-size", type=int, default=1)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads (default: OMP_NUM_THREADS, else 1)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", default=str(ROOT / "work_dirs" / "bench_adapter.json"))
    return parser.parse_args(argv)


def block_indices(spec: str, num_layers: int) -> list[int]:
    """'dpt' -> the four evenly spaced blocks ending at the last; 'last' -> [n - 1]."""
    if spec == "dpt":
        return sorted({max(0, round(num_layers * k / 4) - 1) for k in (1, 2, 3, 4)})
    if spec == "last":
        return [num_layers - 1]
    return [int(i) % num_layers for i in spec.split(",")]


def _sync(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _timed(fn, device: str) -> float:
    start = time.perf_counter()
    fn()
    _sync(device)
    return time.perf_counter() - start


def measure(name: str, side: int, args: argparse.Namespace) -> dict[str, Any]:
    """Both calls on one model; the case's record (seconds, ratios, settings)."""
    import torch

    from pe_dense.backbone.factory import create_backbone

    torch.manual_seed(0)
    backbone = create_backbone(f"timm/{name}").to(args.device).eval()
    if side % backbone.patch_size:
        raise SystemExit(f"{name}: side {side} is not a multiple of its patch "
                         f"{backbone.patch_size}")
    indices = block_indices(args.indices, backbone.num_layers)
    gen = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (args.batch_size, 3, side, side), generator=gen,
                           dtype=torch.uint8)
    x = backbone.normalize(images).to(args.device)
    model = backbone.model

    def timm_call():
        return model.forward_intermediates(x, indices=indices, norm=False, output_fmt="NCHW",
                                           intermediates_only=True, stop_early=True)

    def adapter_call():
        return backbone.forward_intermediates(x, indices=indices, output_fmt="NCHW")

    with torch.inference_mode():
        ours, theirs = adapter_call(), timm_call()
        if len(ours) != len(theirs) or any(not torch.equal(a, b) for a, b in
                                           zip(ours, theirs, strict=True)):
            raise SystemExit(f"{name}: the adapter's maps differ from timm's")
        shapes = [list(t.shape) for t in ours]
        del ours, theirs
        calls = {"timm": timm_call, "adapter": adapter_call}
        for _ in range(args.warmup):
            for fn in calls.values():
                fn()
        times: dict[str, list[float]] = {"timm": [], "adapter": []}
        load_before, cpu_before = os.getloadavg(), time.process_time()
        for r in range(args.repeats):
            for key in (("timm", "adapter") if r % 2 == 0 else ("adapter", "timm")):
                times[key].append(_timed(calls[key], args.device))
        load_after, cpu = os.getloadavg(), time.process_time() - cpu_before
    med = {k: statistics.median(v) for k, v in times.items()}
    paired = [a / t for a, t in zip(times["adapter"], times["timm"], strict=True)]
    return {
        "model": f"timm/{name}", "side": side, "batch_size": args.batch_size,
        "indices": indices, "output_shapes": shapes, "params_m": round(
            sum(p.numel() for p in backbone.parameters()) / 1e6, 2),
        "timm_ms": round(med["timm"] * 1e3, 2), "adapter_ms": round(med["adapter"] * 1e3, 2),
        "ratio": round(med["adapter"] / med["timm"], 4),
        "paired_ratio_median": round(statistics.median(paired), 4),
        "paired_ratio_p10_p90": [round(sorted(paired)[int(0.1 * (len(paired) - 1))], 4),
                                 round(sorted(paired)[int(0.9 * (len(paired) - 1) + 0.5)], 4)],
        "times_ms": {k: [round(t * 1e3, 2) for t in v] for k, v in times.items()},
        "load_before": [round(v, 2) for v in load_before],
        "load_after": [round(v, 2) for v in load_after],
        "cpu_seconds": round(cpu, 1),
    }


def environment(args: argparse.Namespace) -> dict[str, Any]:
    import timm
    import torch

    return {"torch": torch.__version__, "timm": timm.__version__,
            "python": platform.python_version(), "cpu": platform.processor() or platform.machine(),
            "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "device": args.device, "weights": "random", "dtype": "float32",
            "warmup": args.warmup, "repeats": args.repeats}


def table(records: list[dict[str, Any]]) -> str:
    head = f"{'model':<34} {'side':>5} {'timm ms':>9} {'adapter ms':>11} {'ratio':>7} " \
           f"{'paired':>7}  target <= {TARGET}"
    lines = [head, "-" * len(head)]
    for r in records:
        verdict = "ok" if r["paired_ratio_median"] <= TARGET else "OVER"
        lines.append(f"{r['model']:<34} {r['side']:>5} {r['timm_ms']:>9.1f} "
                     f"{r['adapter_ms']:>11.1f} {r['ratio']:>7.4f} "
                     f"{r['paired_ratio_median']:>7.4f}  {verdict}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    sys.path.insert(0, str(ROOT))
    import torch

    from pe_dense.utils.io import atomic_write_text

    threads = args.threads or int(os.environ.get("OMP_NUM_THREADS", "1") or 1)
    torch.set_num_threads(threads)
    cases = [(c.split(":")[0], int(c.split(":")[1])) for c in args.cases.split(",") if c]
    result: dict[str, Any] = {"environment": environment(args), "target_ratio": TARGET,
                              "cases": []}
    started = time.time()
    for name, side in cases:
        print(f"measuring timm/{name} at {side} ({args.repeats} rounds)...", flush=True)
        result["cases"].append(measure(name, side, args))
        result["wall_seconds"] = round(time.time() - started, 1)
        atomic_write_text(args.out, json.dumps(result, indent=2) + "\n")
    print(table(result["cases"]))
    print(f"results in {args.out}")
    return 0 if all(r["paired_ratio_median"] <= TARGET for r in result["cases"]) else 1


if __name__ == "__main__":
    sys.exit(main())
