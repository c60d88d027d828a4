"""Where the time goes: per-operator shares of one backbone forward in eager PyTorch
(``torch.profiler``) and in ONNX Runtime fp32 / int8 (its own profiler), random weights.

    python tools/profile_runtime.py --model PE-Spatial-B16-512 --resolution 512 --repeats 3

Prints, per runtime, the operator types that take most of the time (self time, summed over
the timed runs after one warm-up) and their share of the total.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from collections import Counter
from pathlib import Path

import torch


def _eager(model: torch.nn.Module, x: torch.Tensor, repeats: int) -> Counter:
    from torch.profiler import ProfilerActivity, profile

    with torch.inference_mode():
        model.forward_features(x)
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            for _ in range(repeats):
                model.forward_features(x)
    times: Counter = Counter()
    for event in prof.key_averages():
        times[event.key] += event.self_cpu_time_total / 1e3  # ms
    return times


def _onnxruntime(path: str, x: torch.Tensor, repeats: int) -> Counter:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()
    options.enable_profiling = True
    with tempfile.TemporaryDirectory() as folder:
        options.profile_file_prefix = str(Path(folder) / "ort")
        session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
        feed = {session.get_inputs()[0].name: x.numpy()}
        session.run(None, feed)
        for _ in range(repeats):
            session.run(None, feed)
        events = json.loads(Path(session.end_profiling()).read_text())
    times: Counter = Counter()
    warm_up_done = False  # a run's "model_run" event follows its node events
    for event in events:
        if event.get("cat") == "Session" and event.get("name") == "model_run":
            warm_up_done = True
        elif (event.get("cat") == "Node" and event["name"].endswith("_kernel_time")
              and warm_up_done):
            times[event["args"]["op_name"]] += event["dur"] / 1e3  # ms
    return times


def _print(name: str, times: Counter, repeats: int, top: int) -> None:
    total = sum(times.values())
    print(f"\n{name}: {total / repeats:.1f} ms of operator time per forward")
    for op, ms in times.most_common(top):
        print(f"  {op:<40s} {ms / repeats:9.1f} ms  {100 * ms / total:5.1f} %")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="PE-Spatial-B16-512")
    parser.add_argument("--resolution", type=int, default=512)
    parser.add_argument("--batch-size", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--top", type=int, default=8)
    parser.add_argument("--skip-eager", action="store_true", help="profile ONNX Runtime only")
    args = parser.parse_args()

    from pe_dense.benchmark.core import Case, build_backbone, make_input
    from pe_dense.export.bench import BenchmarkExporter

    torch.manual_seed(0)
    case = Case(args.model, args.resolution, args.batch_size)
    model = build_backbone(case)
    x = make_input(case, model.patch_size)
    if not args.skip_eager:
        _print("eager PyTorch", _eager(model, x, args.repeats), args.repeats, args.top)
    with tempfile.TemporaryDirectory() as folder:
        exporter = BenchmarkExporter(folder)
        for int8 in (False, True):
            path = exporter(model, case, int8)
            name = "onnxruntime int8" if int8 else "onnxruntime fp32"
            _print(name, _onnxruntime(path, x, args.repeats), args.repeats, args.top)


if __name__ == "__main__":
    main()
