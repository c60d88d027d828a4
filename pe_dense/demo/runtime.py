"""The demo's inference runtime: device and precision choice, input preparation, stage timing."""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator

import numpy as np
import torch
import torch.nn.functional as F

from pe_dense.backbone.contract import Backbone
from pe_dense.data.images import contract_size, to_tensor

__all__ = ["pick_dtype", "Runtime", "StageTimer"]

log = logging.getLogger(__name__)


def pick_dtype(device: torch.device, precision: str = "auto") -> torch.dtype:
    """Autocast dtype: bf16 on GPUs that support it ("auto"), fp32 on CPU, where bf16 matmuls
    are far slower without AVX-512 BF16."""
    table = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
    if precision != "auto":
        if precision not in table:
            raise ValueError(f"--precision {precision}: choose auto, fp32, bf16 or fp16")
        return table[precision]
    if device.type == "cuda" and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return torch.float32


class StageTimer:
    """Per-stage latency in milliseconds, smoothed over frames (exponential average).

    ``with timer("backbone"): ...`` times one stage; on CUDA it synchronises at the end of the
    stage so the number is the stage's real latency.
    """

    def __init__(self, device: torch.device | None = None, smoothing: float = 0.8) -> None:
        self.sync = device is not None and device.type == "cuda"
        self.smoothing = smoothing
        self.ms: dict[str, float] = {}
        self.last: dict[str, float] = {}

    @contextlib.contextmanager
    def __call__(self, stage: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            if self.sync:
                torch.cuda.synchronize()
            self.record(stage, (time.perf_counter() - start) * 1e3)

    def record(self, stage: str, ms: float) -> None:
        self.last[stage] = ms
        old = self.ms.get(stage)
        self.ms[stage] = ms if old is None else self.smoothing * old + (1 - self.smoothing) * ms

    def summary(self) -> str:
        return "  ".join(f"{k} {v:.0f}ms" for k, v in self.ms.items())


class Runtime:
    """A backbone on a device, with the input size and precision the demo runs at.

    ``resolution`` is the short side of the network input in pixels (rounded to the patch size,
    aspect ratio kept); a task model that pads to a square caps the long side at that square
    (:meth:`input_size_for`), so frames of any size fit it.
    """

    def __init__(self, backbone: Backbone, model_name: str, resolution: int,
                 device: torch.device, dtype: torch.dtype, weights_note: str = "") -> None:
        if resolution < backbone.patch_size:
            raise ValueError(f"--resolution {resolution} is below the patch size "
                             f"{backbone.patch_size}")
        self.backbone = backbone.to(device).eval()
        self.model_name, self.resolution = model_name, resolution
        self.device, self.dtype = device, dtype
        self.weights_note = weights_note
        self.input_size: tuple[int, int] | None = None  # (H, W) of the last network input

    @property
    def random_weights(self) -> bool:
        """Whether the backbone kept its random init (no weights were loaded)."""
        return bool(self.weights_note)

    @property
    def precision(self) -> str:
        return {torch.float32: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}[self.dtype]

    def input_size_for(self, size: tuple[int, int], square_size: int = 0) -> tuple[int, int]:
        """The (h, w) network input for an (H, W) frame: short side near ``resolution``, sides
        multiples of the patch size, and the long side at most ``square_size`` when the model
        pads to a square (a detector trained with ``detection_collate(square_size=...)``)."""
        return contract_size(size, self.backbone.patch_size, square_size,
                             short_side=self.resolution)

    def prepare(self, image: np.ndarray, square_size: int = 0) -> torch.Tensor:
        """(H, W, 3) uint8 RGB -> (1, 3, h, w) uint8 on the device (the models' input
        contract) at :meth:`input_size_for` (bilinear); ``square_size``: the model's square
        padding, if any (0: none)."""
        x = to_tensor(image)[None].to(self.device, non_blocking=True)
        size = self.input_size_for(tuple(image.shape[:2]), square_size)
        if tuple(x.shape[-2:]) != size:
            y = F.interpolate(x.float(), size=size, mode="bilinear", align_corners=False)
            x = y.round_().clamp_(0, 255).to(torch.uint8)
        self.input_size = size
        return x

    def autocast(self) -> contextlib.AbstractContextManager:
        """Mixed precision for the network forward (a no-op in fp32)."""
        if self.dtype == torch.float32:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.dtype)

    def features(self, images: torch.Tensor, indices: list[int]) -> list[torch.Tensor]:
        """images: (B, 3, h, w) uint8 from :meth:`prepare` -> ``backbone.forward_intermediates``
        of the normalised batch under inference mode and autocast, as float32 (B, C, h/p, w/p)
        maps."""
        with torch.inference_mode(), self.autocast():
            maps = self.backbone.forward_intermediates(self.backbone.normalize(images),
                                                       indices=indices)
        return [m.float() for m in maps]
