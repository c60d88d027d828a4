"""Backbone speed, memory and FLOP measurement, as library functions.

One :class:`Case` is a (model, resolution, batch, dtype, attention, compile, device, mode)
configuration. :func:`run_case` measures it for pe_dense's ``PEViT`` and, on request, for timm's
matching ``vit_pe_*`` model built with identical weights (through our converter) in the same
process, after checking that both give the same output.

Timing: warm-up iterations, then ``repeats`` synchronised iterations; median and p90 latency.
Implementations are timed interleaved (ours, theirs, ours, ...) so that drift in a shared machine
affects both alike. Memory: on CUDA the allocator's peak (``max_memory_allocated``); on CPU the
peak resident set size of a fresh subprocess that runs the same workload (the kernel's high-water
mark, reset just before the iteration), minus its resident size then; the lower of two such runs.
So the number is what one forward (and backward) itself needs. FLOPs come
from ``torch.utils.flop_counter`` (matmuls and attention, the CPU attention kernel included;
1 multiply-add = 2 FLOPs).
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import torch

from pe_dense.backbone.factory import create_backbone
from pe_dense.backbone.variants import get_variant, vitdet_global_blocks
from pe_dense.backbone.weights import official_to_timm

__all__ = ["Case", "Result", "build_backbone", "run_case", "measure_memory", "TIMM_NAMES"]

log = logging.getLogger(__name__)

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
TIMM_NAMES = {
    "PE-Spatial-T16-512": "vit_pe_spatial_tiny_patch16_512",
    "PE-Spatial-S16-512": "vit_pe_spatial_small_patch16_512",
    "PE-Spatial-B16-512": "vit_pe_spatial_base_patch16_512",
    "PE-Spatial-L14-448": "vit_pe_spatial_large_patch14_448",
    "PE-Spatial-G14-448": "vit_pe_spatial_gigantic_patch14_448",
    "PE-Core-T16-384": "vit_pe_core_tiny_patch16_384",
    "PE-Core-S16-384": "vit_pe_core_small_patch16_384",
    "PE-Core-B16-224": "vit_pe_core_base_patch16_224",
    "PE-Core-L14-336": "vit_pe_core_large_patch14_336",
    "PE-Core-G14-448": "vit_pe_core_gigantic_patch14_448",
    "PE-Lang-L14-448": "vit_pe_lang_large_patch14_448",
    "PE-Lang-G14-448": "vit_pe_lang_gigantic_patch14_448",
}


@dataclass(frozen=True)
class Case:
    """One benchmark configuration. ``resolution`` is the square input side in pixels (rounded
    down to the patch size); ``attention="windowed"`` uses the checkpoint's position grid as the
    window and ViTDet global blocks."""

    model: str
    resolution: int
    batch_size: int = 1
    dtype: str = "fp32"
    attention: str = "global"
    compile: bool = False
    device: str = "cpu"
    mode: str = "inference"

    def __post_init__(self) -> None:
        get_variant(self.model)
        for name, value, choices in (("dtype", self.dtype, tuple(DTYPES)),
                                     ("attention", self.attention, ("global", "windowed")),
                                     ("mode", self.mode, ("inference", "train")),
                                     ("device", self.device.split(":")[0], ("cpu", "cuda"))):
            if value not in choices:
                raise ValueError(f"{name}={value!r} is not one of {choices}")
        if self.resolution <= 0 or self.batch_size <= 0:
            raise ValueError("resolution and batch size must be positive")


@dataclass
class Result:
    """Measurements of one case for one implementation (``impl`` "pe_dense" or "timm")."""

    case: Case
    impl: str = "pe_dense"
    status: str = "ok"
    latency_ms: float = float("nan")
    latency_p90_ms: float = float("nan")
    images_per_s: float = float("nan")
    tokens_per_s: float = float("nan")
    peak_mem_mb: float = float("nan")
    params_m: float = float("nan")
    gflops: float = float("nan")
    max_abs_diff: float | None = None
    extra: dict = field(default_factory=dict)

    def row(self) -> dict:
        """A flat dict for tables, CSV and JSON."""
        out = {k: v for k, v in asdict(self).items() if k not in ("case", "extra")}
        return {**asdict(self.case), **out, **self.extra}


def build_backbone(case: Case) -> torch.nn.Module:
    """Our backbone for ``case`` with random weights, on the case's device, in eval mode."""
    cfg = get_variant(case.model)
    kw = {}
    if case.attention == "windowed":
        kw = dict(window_size=cfg.image_size // cfg.patch_size,
                  global_blocks=vitdet_global_blocks(cfg.layers))
    return create_backbone(case.model, **kw).to(case.device).eval()


def _timm_model(case: Case) -> torch.nn.Module:
    """timm's ``vit_pe_*`` model for ``case`` (random weights), set to compute what the official
    code computes (integer RoPE positions at every size)."""
    try:
        import timm  # dev dependency, imported only when comparing
    except ImportError as exc:
        raise ImportError("--compare timm needs timm: pip install 'timm>=1.0.31'") from exc
    if case.attention != "global":
        raise ValueError("timm's vit_pe models have no windowed attention: compare with global")
    if case.model not in TIMM_NAMES:
        raise ValueError(f"no timm model for {case.model}")
    theirs = timm.create_model(TIMM_NAMES[case.model], pretrained=False, dynamic_img_size=True,
                               num_classes=get_variant(case.model).output_dim or 0)
    theirs.rope.ref_feat_shape = None
    return theirs.to(case.device).eval()


def _timm_twin(case: Case, ours: torch.nn.Module) -> torch.nn.Module:
    """timm's model for ``case`` holding our weights (converted with our converter)."""
    theirs = _timm_model(case)
    theirs.load_state_dict(official_to_timm(ours.state_dict()), strict=True)
    return theirs


def _step(case: Case, model: torch.nn.Module, x: torch.Tensor) -> Callable[[], None]:
    """One iteration: forward (inference) or forward + backward (train)."""
    fwd = model.forward_features
    if case.compile:
        fwd = torch.compile(fwd, dynamic=False)
    dtype = DTYPES[case.dtype]
    device_type = x.device.type
    autocast = dtype != torch.float32

    def run() -> None:
        with torch.autocast(device_type, dtype=dtype, enabled=autocast):
            if case.mode == "train":
                fwd(x).float().square().mean().backward()
            else:
                with torch.inference_mode():
                    fwd(x)

    if case.mode == "train":
        model.train()
    return run


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _input(case: Case, patch: int) -> torch.Tensor:
    side = case.resolution // patch * patch
    gen = torch.Generator().manual_seed(0)
    return torch.rand(case.batch_size, 3, side, side, generator=gen).mul(2).sub(1).to(case.device)


def count_gflops(case: Case, model: torch.nn.Module, x: torch.Tensor) -> float:
    """FLOPs of one iteration of ``case`` (forward, or forward + backward), in GFLOP."""
    from torch.utils import flop_counter

    # torch registers attention FLOP formulas for the CUDA kernels only; count the CPU flash
    # kernel (forward and backward) with the same formulas.
    def forward_flops(q, k, v, *args, out_shape=None, **kwargs) -> int:
        return flop_counter.sdpa_flop_count(q, k, v)

    def backward_flops(grad, q, k, v, *args, out_shape=None, **kwargs) -> int:
        return flop_counter.sdpa_backward_flop_count(grad, q, k, v)

    aten = torch.ops.aten
    cpu_sdpa = {aten._scaled_dot_product_flash_attention_for_cpu: forward_flops,
                aten._scaled_dot_product_flash_attention_for_cpu_backward: backward_flops}
    counter = flop_counter.FlopCounterMode(display=False, custom_mapping=cpu_sdpa)
    with counter:
        if case.mode == "train":
            model.forward_features(x).float().square().mean().backward()
        else:
            with torch.no_grad():
                model.forward_features(x)
    model.zero_grad(set_to_none=True)
    return counter.get_total_flops() / 1e9


def _is_oom(exc: BaseException) -> bool:
    return isinstance(exc, MemoryError | torch.cuda.OutOfMemoryError) or (
        "out of memory" in str(exc).lower())


@contextlib.contextmanager
def official_timm_resampling():
    """Make timm resample position embeddings as the official code does (bilinear, no
    antialias) while the context is active; timm's default is bicubic with antialias."""
    import timm.models.eva as eva

    original = eva.resample_abs_pos_embed
    eva.resample_abs_pos_embed = functools.partial(original, interpolation="bilinear",
                                                   antialias=False)
    try:
        yield
    finally:
        eva.resample_abs_pos_embed = original


def run_case(case: Case, compare: str | None = None, warmup: int = 2, repeats: int = 5,
             memory: bool = True) -> list[Result]:
    """Measure ``case`` for pe_dense (and timm when ``compare == "timm"``). Out-of-memory and
    other per-case failures are reported in ``Result.status``, not raised."""
    if compare == "timm":
        with official_timm_resampling():
            return _run_case(case, compare, warmup, repeats, memory)
    return _run_case(case, compare, warmup, repeats, memory)


def _run_case(case: Case, compare: str | None, warmup: int, repeats: int,
              memory: bool) -> list[Result]:
    impls = ["pe_dense"] + (["timm"] if compare == "timm" else [])
    results = {impl: Result(case, impl) for impl in impls}
    try:
        ours = build_backbone(case)
        models = {"pe_dense": ours}
        if compare == "timm":
            models["timm"] = _timm_twin(case, ours)
        x = _input(case, ours.patch_size)
        for impl, model in models.items():
            results[impl].params_m = sum(p.numel() for p in model.parameters()) / 1e6
            results[impl].gflops = count_gflops(case, model, x[:1]) * case.batch_size
        if compare == "timm":
            with torch.no_grad():
                diff = (ours.forward_features(x[:1]) - models["timm"].forward_features(x[:1]))
            results["timm"].max_abs_diff = diff.abs().max().item()
        steps = {impl: _step(case, m, x) for impl, m in models.items()}
        times = _time_interleaved(steps, case.device, warmup, repeats)
    except Exception as exc:  # a failed case must not end a sweep
        status = "oom" if _is_oom(exc) else f"error: {type(exc).__name__}: {exc}"
        log.warning("%s failed: %s", case, status)
        for r in results.values():
            r.status = status
        return list(results.values())
    tokens = (case.resolution // ours.patch_size) ** 2 * case.batch_size
    for impl, ts in times.items():
        r = results[impl]
        r.latency_ms = statistics.median(ts) * 1e3
        r.latency_p90_ms = _quantile(ts, 0.9) * 1e3
        r.images_per_s = case.batch_size / statistics.median(ts)
        r.tokens_per_s = tokens / statistics.median(ts)
        if memory:
            r.peak_mem_mb = measure_memory(case, impl)
    return list(results.values())


def _time_interleaved(steps: dict[str, Callable[[], None]], device: str, warmup: int,
                      repeats: int) -> dict[str, list[float]]:
    for _ in range(warmup):
        for step in steps.values():
            step()
    _sync(device)
    times: dict[str, list[float]] = {impl: [] for impl in steps}
    for _ in range(repeats):
        for impl, step in steps.items():
            start = time.perf_counter()
            step()
            _sync(device)
            times[impl].append(time.perf_counter() - start)
    return times


def _quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def measure_memory(case: Case, impl: str = "pe_dense") -> float:
    """Peak memory in MiB of one iteration of ``case`` (see the module docstring)."""
    if case.device.startswith("cuda"):
        return _memory_worker(case, impl)
    peaks = []
    for _ in range(2):  # RSS peaks only err upwards (allocator transients): keep the lower
        proc = subprocess.run(
            [sys.executable, "-m", "pe_dense.benchmark.core", json.dumps(asdict(case)), impl],
            capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            tail = proc.stderr.strip().splitlines()[-1:] or ["no output"]
            raise RuntimeError(f"memory worker failed for {case} ({impl}): {tail[0]}")
        peaks.append(float(proc.stdout.strip().splitlines()[-1]))
    return min(peaks)


def _memory_worker(case: Case, impl: str) -> float:
    """Build, run one iteration, return the peak in MiB above the pre-iteration level."""
    if impl == "timm":
        with official_timm_resampling():
            return _run_memory(case, _timm_model(case))
    return _run_memory(case, build_backbone(case))


def _run_memory(case: Case, model: torch.nn.Module) -> float:
    x = _input(case, get_variant(case.model).patch_size)
    step = _step(replace(case, compile=False), model, x)
    if case.device.startswith("cuda"):
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        step()
        torch.cuda.synchronize()
        return (torch.cuda.max_memory_allocated() - base) / 2**20
    # Reset the kernel's resident-size high-water mark to the current size (Linux >= 4.0), so
    # the peak is the step's own, not that of imports or model construction.
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    base = _status_kib("VmRSS")
    step()
    return (_status_kib("VmHWM") - base) / 1024


def plot_results(rows: list[dict], out_dir: Path) -> list[Path]:
    """Throughput and peak memory against resolution, one line per (impl, model, attention,
    batch, mode); one PNG per metric. Returns the written paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from pe_dense.utils.io import save_figure

    ok = [r for r in rows if r["status"] == "ok"]
    series: dict[str, list[dict]] = {}
    for r in ok:
        label = f"{r['impl']} {r['model']} {r['attention']} b{r['batch_size']} {r['mode']}"
        series.setdefault(label, []).append(r)
    paths = []
    for key, title in (("images_per_s", "throughput (images/s)"),
                       ("peak_mem_mb", "peak memory (MiB)")):
        fig, ax = plt.subplots(figsize=(7, 4.5))
        for label, points in sorted(series.items()):
            points = sorted(points, key=lambda r: r["resolution"])
            ax.plot([p["resolution"] for p in points], [p[key] for p in points], marker="o",
                    linestyle="--" if "windowed" in label else "-", label=label)
        ax.set_xlabel("input side (pixels)")
        ax.set_ylabel(title)
        ax.set_yscale("log")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
        ax.set_title(f"PE backbone {title} on {ok[0]['device'] if ok else '?'}")
        paths.append(save_figure(fig, out_dir / f"{key}.png", dpi=110, bbox_inches="tight"))
    return paths


def _status_kib(field: str) -> int:
    """A size field of /proc/self/status (e.g. VmRSS, VmHWM) in KiB."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(f"{field}:"):
                return int(line.split()[1])
    raise RuntimeError(f"cannot read {field} from /proc/self/status (Linux only)")


if __name__ == "__main__":  # the CPU memory worker: python -m pe_dense.benchmark.core CASE_JSON IMPL
    print(_memory_worker(Case(**json.loads(sys.argv[1])), sys.argv[2]))
