"""Build the demo from command-line style options: the runtime (backbone on a device) and a
factory that creates each mode on first use."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from pe_dense.demo.errors import ModelMismatch
from pe_dense.demo.modes import FeaturesMode, Mode
from pe_dense.demo.runtime import Runtime, pick_device, pick_dtype

__all__ = ["ModelOptions", "build_runtime", "mode_factory"]

log = logging.getLogger(__name__)


@dataclass
class ModelOptions:
    """Which network runs. ``config``/``checkpoint``: a trained task model (heads included);
    otherwise ``model`` (a PE variant) with optional backbone ``weights`` and random heads."""

    model: str = "PE-Spatial-T16-512"
    weights: str | None = None
    config: str | None = None
    checkpoint: str | None = None
    resolution: int = 512
    device: str = "auto"
    precision: str = "auto"
    layer: int = -1
    pca_frames: int = 4
    track_box: tuple[int, int, int, int] | None = None


def build_runtime(opts: ModelOptions) -> Runtime:
    """The backbone on its device. Weight/shape mismatches become :class:`ModelMismatch`."""
    from pe_dense import create_backbone, list_models

    if bool(opts.config) != bool(opts.checkpoint):
        raise ValueError("--config and --checkpoint go together (a trained task model); for a "
                         "backbone alone use --model NAME [--weights PATH]")
    device = pick_device(opts.device)
    dtype = pick_dtype(device, opts.precision)
    if opts.model not in list_models():
        raise ValueError(f"unknown --model {opts.model}; known: {', '.join(list_models())}")
    try:
        backbone = create_backbone(opts.model, weights=opts.weights)
    except ValueError as exc:  # includes WeightLoadError / CheckpointError
        raise ModelMismatch(f"--weights {opts.weights} do not fit {opts.model}: {exc}") from exc
    note = "" if opts.weights else "random backbone weights: pass --weights for real features"
    return Runtime(backbone, opts.model, opts.resolution, device, dtype, weights_note=note)


def mode_factory(runtime: Runtime, opts: ModelOptions) -> Callable[[str], Mode]:
    """``build(name) -> Mode`` for features, depth, seg, det and track."""

    def build(name: str) -> Mode:
        if name == "features":
            return FeaturesMode(runtime, layer=opts.layer, fit_frames=opts.pca_frames)
        if name == "track":
            from pe_dense.demo.track import TrackMode

            return TrackMode(runtime, layer=opts.layer, box=opts.track_box)
        raise ModelMismatch(f"mode {name} is not available in this build")

    return build
