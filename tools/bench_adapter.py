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
so drift of a shared machine hits both alike. Each call's wall time and, on the CPU, its
process CPU time (``time.process_time``: the work itself, every torch thread, not the time
other jobs of a shared machine take the core) are recorded. Reported per case: the median of
each, their ratios (adapter / timm) and the medians of the per-round ratios; the target of
issue 25 is a ratio <= 1.02 (judged on the paired CPU-time ratio on the CPU, the paired wall
ratio on a GPU). ``own_us``: the adapter's own cost per call, measured with timm's call
replaced by one that returns the maps at once (10,000 calls): what the adapter adds, with no
noise of the forward around it. The load average and CPU seconds of the run are recorded.
Results: a table on stdout and ``--out`` (JSON), rewritten atomically after every case. Usage::

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


def _timed(fn, device: str) -> tuple[float, float]:
    """(wall seconds, process CPU seconds) of one call."""
    start, cpu = time.perf_counter(), time.process_time()
    fn()
    _sync(device)
    return time.perf_counter() - start, time.process_time() - cpu


def own_cost_us(backbone, x, indices: list[int], calls: int = 10_000) -> float:
    """Microseconds per ``backbone.forward_intermediates`` call with timm's method replaced by
    one that hands back precomputed maps: the adapter's own work (index and input checks,
    ordering the maps)."""
    model = backbone.model
    maps = model.forward_intermediates(x, indices=sorted(set(indices)), norm=False,
                                       output_fmt="NCHW", intermediates_only=True,
                                       stop_early=True)
    model.forward_intermediates = lambda *args, **kwargs: maps
    try:
        start = time.perf_counter()
        for _ in range(calls):
            backbone.forward_intermediates(x, indices=indices, output_fmt="NCHW")
        return (time.perf_counter() - start) / calls * 1e6
    finally:
        del model.forward_intermediates  # the class's method again


def _summary(times: dict[str, list[tuple[float, float]]], which: int) -> dict[str, Any]:
    """Medians (ms), their ratio and the paired per-round ratios of wall (0) or CPU (1) time."""
    timm_t = [t[which] for t in times["timm"]]
    ours_t = [t[which] for t in times["adapter"]]
    paired = sorted(a / b for a, b in zip(ours_t, timm_t, strict=True))
    return {"timm_ms": round(statistics.median(timm_t) * 1e3, 2),
            "adapter_ms": round(statistics.median(ours_t) * 1e3, 2),
            "ratio": round(statistics.median(ours_t) / statistics.median(timm_t), 4),
            "paired_ratio_median": round(statistics.median(paired), 4),
            "paired_ratio_p10_p90": [round(paired[int(0.1 * (len(paired) - 1))], 4),
                                     round(paired[int(0.9 * (len(paired) - 1) + 0.5)], 4)]}


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
        times: dict[str, list[tuple[float, float]]] = {"timm": [], "adapter": []}
        load_before, cpu_before = os.getloadavg(), time.process_time()
        for r in range(args.repeats):
            for key in (("timm", "adapter") if r % 2 == 0 else ("adapter", "timm")):
                times[key].append(_timed(calls[key], args.device))
        load_after, cpu = os.getloadavg(), time.process_time() - cpu_before
        own = own_cost_us(backbone, x, indices)
    wall, cpu_time = _summary(times, 0), _summary(times, 1)
    judged = cpu_time if args.device == "cpu" else wall
    return {
        "model": f"timm/{name}", "side": side, "batch_size": args.batch_size,
        "indices": indices, "output_shapes": shapes, "params_m": round(
            sum(p.numel() for p in backbone.parameters()) / 1e6, 2),
        "wall": wall, "cpu_time": cpu_time, "judged_on": "cpu_time" if judged is cpu_time
        else "wall", "judged_ratio": judged["paired_ratio_median"], "own_us": round(own, 1),
        "own_share": round(own * 1e-3 / judged["timm_ms"], 6),
        "times_ms": {k: [[round(w * 1e3, 2), round(c * 1e3, 2)] for w, c in v]
                     for k, v in times.items()},
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
    head = (f"{'model':<31} {'side':>4} {'timm ms':>8} {'adapter ms':>10} {'wall':>6} "
            f"{'cpu ms':>7} {'adapter cpu':>11} {'cpu':>6} {'own us':>6}  target <= {TARGET}")
    lines = [head, "-" * len(head)]
    for r in records:
        w, c = r["wall"], r["cpu_time"]
        verdict = "ok" if r["judged_ratio"] <= TARGET else "OVER"
        lines.append(f"{r['model']:<31} {r['side']:>4} {w['timm_ms']:>8.1f} "
                     f"{w['adapter_ms']:>10.1f} {w['paired_ratio_median']:>6.3f} "
                     f"{c['timm_ms']:>7.1f} {c['adapter_ms']:>11.1f} "
                     f"{c['paired_ratio_median']:>6.3f} {r['own_us']:>6.1f}  {verdict} "
                     f"({r['judged_on']})")
    lines.append("wall / cpu: medians of the per-round adapter/timm ratios; own us: the "
                 "adapter's own cost per call")
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
    return 0 if all(r["judged_ratio"] <= TARGET for r in result["cases"]) else 1


if __name__ == "__main__":
    sys.exit(main())
