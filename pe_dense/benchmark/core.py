"""Benchmark cases: what is measured (:class:`Case`), what comes out (:class:`Result`), and the
models, inputs and iteration step of a case (ours, and timm's twin with identical weights).

A case names any encoder under the backbone contract: a PE variant (``PE-Spatial-B16-512``) or
a timm model (``timm/vit_small_patch16_dinov3``), built with :func:`create_backbone` and measured
through the contract only (``forward_features``, ``patch_size``, ``normalize``, ``blocks``), so
several families sit in one table. ``Case.overrides`` are ``create_backbone`` keyword arguments
(e.g. ``depth=2, embed_dim=64, num_heads=2`` for a tiny timm model). Windowed attention runs only
on backbones whose ``supports_windowed`` is true; timm's ``vit_pe_*`` twin (``--compare timm``)
exists for PE variants only.

The measurements live in :mod:`~pe_dense.benchmark.timing` (latency, :func:`run_case`),
:mod:`~pe_dense.benchmark.flops` and :mod:`~pe_dense.benchmark.memory` (peak memory, on CPU in
a fresh :mod:`~pe_dense.benchmark.worker` subprocess); tables and plots in
:mod:`~pe_dense.benchmark.report`.
"""

from __future__ import annotations

import contextlib
import functools
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import torch

from pe_dense.backbone.contract import Backbone
from pe_dense.backbone.factory import create_backbone
from pe_dense.backbone.inputs import normalize
from pe_dense.backbone.variants import VARIANTS, get_variant, vitdet_global_blocks
from pe_dense.backbone.weights import official_to_timm

__all__ = ["Case", "Result", "EncoderInfo", "encoder_info", "build_backbone", "timm_model",
           "timm_twin", "make_input", "make_step", "sync", "official_timm_resampling", "DTYPES",
           "TIMM_NAMES"]

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
class EncoderInfo:
    """What the benchmark needs to know of an encoder before building it (read from a copy
    built on the ``meta`` device: no weights, no time)."""

    patch_size: int
    num_layers: int
    supports_windowed: bool
    input_mean: tuple[float, float, float]
    input_std: tuple[float, float, float]


@functools.lru_cache(maxsize=64)
def _encoder_info(model: str, overrides_json: str) -> EncoderInfo:
    with torch.device("meta"):
        backbone = create_backbone(model, **json.loads(overrides_json))
    return EncoderInfo(backbone.patch_size, backbone.num_layers, backbone.supports_windowed,
                       tuple(backbone.input_mean), tuple(backbone.input_std))


def encoder_info(model: str, overrides: dict[str, Any] | None = None) -> EncoderInfo:
    """:class:`EncoderInfo` of ``create_backbone(model, **overrides)`` (cached). Unknown names
    raise ``create_backbone``'s ``ValueError`` (PE variants listed, timm's "did you mean")."""
    return _encoder_info(model, json.dumps(overrides or {}, sort_keys=True))


@dataclass(frozen=True)
class Case:
    """One benchmark configuration. ``model``: a PE variant or ``timm/<model name>``;
    ``resolution`` is the square input side in pixels (a multiple of the model's patch size,
    else a ``ValueError``); ``attention="windowed"`` uses the checkpoint's position grid as the
    window and ViTDet global blocks (backbones with ``supports_windowed`` only, else a
    ``ValueError``). ``overrides``: ``create_backbone`` keyword arguments (e.g. a tiny timm
    model: ``{"depth": 2, "embed_dim": 64, "num_heads": 2}``)."""

    model: str
    resolution: int
    batch_size: int = 1
    dtype: str = "fp32"
    attention: str = "global"
    compile: bool = False
    device: str = "cpu"
    mode: str = "inference"
    overrides: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name, value, choices in (("dtype", self.dtype, tuple(DTYPES)),
                                     ("attention", self.attention, ("global", "windowed")),
                                     ("mode", self.mode, ("inference", "train")),
                                     ("device", self.device.split(":")[0], ("cpu", "cuda"))):
            if value not in choices:
                raise ValueError(f"{name}={value!r} is not one of {choices}")
        if self.resolution <= 0 or self.batch_size <= 0:
            raise ValueError("resolution and batch size must be positive")
        info = encoder_info(self.model, self.overrides)
        patch = info.patch_size
        if self.resolution % patch:
            near = sorted({max(patch, self.resolution // patch * patch),
                           -(-self.resolution // patch) * patch})
            raise ValueError(f"--resolution {self.resolution} is not a multiple of {self.model}'s "
                             f"patch size {patch}; nearest valid: {' or '.join(map(str, near))}")
        if self.attention == "windowed" and not info.supports_windowed:
            raise ValueError(f"--attention windowed: {self.model} has no ViTDet windowed "
                             "attention (its backbone's supports_windowed is False; the PE "
                             "variants have it): benchmark it with --attention global, in a "
                             "separate run from the windowed PE cases")

    def __hash__(self) -> int:
        return hash(json.dumps(asdict(self), sort_keys=True))


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
        """A flat dict for tables, CSV and JSON (``overrides`` as ``"k=v k=v"``, only when
        given)."""
        out = {k: v for k, v in asdict(self).items() if k not in ("case", "extra")}
        case = asdict(self.case)
        overrides = case.pop("overrides")
        if overrides:
            case["overrides"] = " ".join(f"{k}={v}" for k, v in sorted(overrides.items()))
        return {**case, **out, **self.extra}


def build_backbone(case: Case) -> Backbone:
    """The backbone of ``case`` (``create_backbone(case.model, **case.overrides)``) with random
    weights, on the case's device, in eval mode; windowed cases get the PE variant's ViTDet
    settings (window = the checkpoint's position grid, global blocks as ViTDet)."""
    kw = dict(case.overrides)
    if case.attention == "windowed":
        if case.model not in VARIANTS:
            raise ValueError(f"windowed attention settings are known for PE variants only, not "
                             f"{case.model}: benchmark it with --attention global")
        cfg = get_variant(case.model)
        layers = kw.get("layers", cfg.layers)
        kw = {"window_size": cfg.image_size // cfg.patch_size,
              "global_blocks": vitdet_global_blocks(layers), **kw}
    return create_backbone(case.model, **kw).to(case.device).eval()


def timm_model(case: Case) -> torch.nn.Module:
    """timm's ``vit_pe_*`` model for ``case`` (random weights), set to compute what the official
    code computes (integer RoPE positions at every size)."""
    from pe_dense.backbone.timm_adapter import create_timm_model

    if case.attention != "global":
        raise ValueError("timm's vit_pe models have no windowed attention: compare with global")
    if case.model not in TIMM_NAMES or case.overrides:
        raise ValueError(f"--compare timm measures timm's vit_pe twin of a PE variant (same "
                         f"weights, same outputs); {case.model}"
                         f"{' with overrides' if case.overrides else ''} has none: benchmark "
                         "other encoders side by side with --model A,B instead")
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


def make_input(case: Case, backbone: Backbone | EncoderInfo | int) -> torch.Tensor:
    """(B, 3, S, S) float on the case's device: random uint8 RGB images (seed 0, S = the
    resolution floored to the patch) normalised with the backbone's own statistics
    (``input_mean`` / ``input_std``; a bare int is a patch size with PE's mean = std = 0.5)."""
    if isinstance(backbone, int):
        patch, mean, std = backbone, 0.5, 0.5
    else:
        patch, mean, std = backbone.patch_size, backbone.input_mean, backbone.input_std
    side = case.resolution // patch * patch
    gen = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (case.batch_size, 3, side, side), generator=gen,
                           dtype=torch.uint8)
    return normalize(images, None, mean, std).to(case.device)


def official_timm_resampling() -> contextlib.AbstractContextManager:
    """Make timm resample position embeddings as the official code does (bilinear, no
    antialias) while the context is active; timm's default is bicubic with antialias."""
    from pe_dense.backbone.timm_adapter import eva_pos_resampling

    return eva_pos_resampling(interpolation="bilinear", antialias=False)
