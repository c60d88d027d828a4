"""Benchmark cases: what is measured (:class:`Case`), what comes out (:class:`Result`), and the
models, inputs and iteration step of a case (ours, and timm's twin with identical weights).

The measurements live in :mod:`~pe_dense.benchmark.timing` (latency, :func:`run_case`),
:mod:`~pe_dense.benchmark.flops` and :mod:`~pe_dense.benchmark.memory` (peak memory, on CPU in
a fresh :mod:`~pe_dense.benchmark.worker` subprocess); tables and plots in
:mod:`~pe_dense.benchmark.report`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import torch

from pe_dense.backbone.factory import create_backbone
from pe_dense.backbone.variants import get_variant, vitdet_global_blocks
from pe_dense.backbone.weights import official_to_timm

__all__ = ["Case", "Result", "build_backbone", "timm_model", "timm_twin", "make_input",
           "make_step", "sync", "official_timm_resampling", "DTYPES", "TIMM_NAMES"]

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
    """One benchmark configuration. ``resolution`` is the square input side in pixels (a
    multiple of the model's patch size, else a ``ValueError``); ``attention="windowed"`` uses
    the checkpoint's position grid as the window and ViTDet global blocks."""

    model: str
    resolution: int
    batch_size: int = 1
    dtype: str = "fp32"
    attention: str = "global"
    compile: bool = False
    device: str = "cpu"
    mode: str = "inference"

    def __post_init__(self) -> None:
        patch = get_variant(self.model).patch_size
        for name, value, choices in (("dtype", self.dtype, tuple(DTYPES)),
                                     ("attention", self.attention, ("global", "windowed")),
                                     ("mode", self.mode, ("inference", "train")),
                                     ("device", self.device.split(":")[0], ("cpu", "cuda"))):
            if value not in choices:
                raise ValueError(f"{name}={value!r} is not one of {choices}")
        if self.resolution <= 0 or self.batch_size <= 0:
            raise ValueError("resolution and batch size must be positive")
        if self.resolution % patch:
            near = sorted({max(patch, self.resolution // patch * patch),
                           -(-self.resolution // patch) * patch})
            raise ValueError(f"--resolution {self.resolution} is not a multiple of {self.model}'s "
                             f"patch size {patch}; nearest valid: {' or '.join(map(str, near))}")


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


def timm_model(case: Case) -> torch.nn.Module:
    """timm's ``vit_pe_*`` model for ``case`` (random weights), set to compute what the official
    code computes (integer RoPE positions at every size)."""
    from pe_dense.backbone.timm_adapter import create_timm_model

    if case.attention != "global":
        raise ValueError("timm's vit_pe models have no windowed attention: compare with global")
    if case.model not in TIMM_NAMES:
        raise ValueError(f"no timm model for {case.model}")
    theirs = create_timm_model(TIMM_NAMES[case.model], dynamic_img_size=True,
                               num_classes=get_variant(case.model).output_dim or 0)
    theirs.rope.ref_feat_shape = None
    return theirs.to(case.device).eval()


def timm_twin(case: Case, ours: torch.nn.Module) -> torch.nn.Module:
    """timm's model for ``case`` holding our weights (converted with our converter)."""
    theirs = timm_model(case)
    theirs.load_state_dict(official_to_timm(ours.state_dict()), strict=True)
    return theirs


def make_step(case: Case, model: torch.nn.Module, x: torch.Tensor) -> Callable[[], None]:
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


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def make_input(case: Case, patch: int) -> torch.Tensor:
    side = case.resolution // patch * patch
    gen = torch.Generator().manual_seed(0)
    return torch.rand(case.batch_size, 3, side, side, generator=gen).mul(2).sub(1).to(case.device)


def official_timm_resampling() -> contextlib.AbstractContextManager:
    """Make timm resample position embeddings as the official code does (bilinear, no
    antialias) while the context is active; timm's default is bicubic with antialias."""
    from pe_dense.backbone.timm_adapter import eva_pos_resampling

    return eva_pos_resampling(interpolation="bilinear", antialias=False)
