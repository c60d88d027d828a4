"""SAM 2 / 2.1 as a distillation teacher: raw mask logits for a grid of point prompts.

The only module that imports the ``sam2`` package (``pip install pe-dense[sam2]``, i.e.
``SAM2_BUILD_CUDA=0 pip install --no-build-isolation sam2==1.1.0``). Recipe (PE paper,
section 5): the image is resized to 1024 x 1024, each point of a 32 x 32 grid is one prompt,
and the unthresholded single-mask logit of every prompt is kept; the N maps are stacked into an
(N, H, W) "feature map" and pooled down to the student's token grid.
"""

from __future__ import annotations

import logging
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from pe_dense.distill.teachers import resample_tokens, seeded

__all__ = ["SAM2MaskTeacher", "build_sam2_teacher", "import_sam2"]

log = logging.getLogger(__name__)

INSTALL_HINT = ("the SAM 2 teacher needs the 'sam2' package: pip install 'pe-dense[sam2]' "
                "(or SAM2_BUILD_CUDA=0 pip install --no-build-isolation sam2==1.1.0)")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def import_sam2() -> Any:
    """Import ``sam2.build_sam`` or fail with the install command."""
    try:
        from sam2 import build_sam
    except ImportError as exc:
        raise ImportError(f"{INSTALL_HINT} ({exc})") from exc
    return build_sam


class SAM2MaskTeacher(nn.Module):
    """Frozen SAM 2 model -> (B, N, gh, gw) mask-logit maps, N = ``points_per_side``^2.

    ``model`` is a ``sam2.modeling.sam2_base.SAM2Base``. ``image_size`` must equal the model's
    own input size (1024 for the released checkpoints). ``chunk`` prompts go through the mask
    decoder at once. Logits are the decoder's low-resolution output (``image_size / 4``), clamped
    to [-32, 32] as SAM 2 does, then average-pooled (or bilinearly resampled) to the grid.
    """

    def __init__(self, model: nn.Module, points_per_side: int = 32, chunk: int = 256,
                 info: dict[str, Any] | None = None) -> None:
        super().__init__()
        if points_per_side < 1:
            raise ValueError(f"points_per_side={points_per_side} must be >= 1")
        self.model = model
        self.image_size = int(model.image_size)
        self.points_per_side = points_per_side
        self.chunk = chunk
        self.out_channels = points_per_side**2
        self._info = dict(info or {})
        self.model.eval()
        for p in self.model.parameters():
            p.requires_grad_(False)

    def train(self, mode: bool = True) -> SAM2MaskTeacher:  # always frozen, always eval
        return super().train(False)

    def describe(self) -> dict[str, Any]:
        return {"kind": "sam2", **self._info, "image_size": self.image_size,
                "points_per_side": self.points_per_side, "out_channels": self.out_channels}

    def point_grid(self, device: torch.device) -> torch.Tensor:
        """(N, 2) prompt coordinates (x, y) in input pixels, cell centres, row-major."""
        n, s = self.points_per_side, self.image_size
        c = (torch.arange(n, device=device, dtype=torch.float32) + 0.5) * (s / n)
        ys, xs = torch.meshgrid(c, c, indexing="ij")
        return torch.stack([xs.flatten(), ys.flatten()], dim=1)

    def _encode(self, images: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """images (B, 3, H, W) in [-1, 1] -> image embedding and high-resolution features."""
        x = F.interpolate((images.float() + 1) / 2, size=(self.image_size, self.image_size),
                          mode="bilinear", align_corners=False)
        mean = x.new_tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
        std = x.new_tensor(IMAGENET_STD).view(1, 3, 1, 1)
        out = self.model.forward_image((x - mean) / std)
        _, feats, _, sizes = self.model._prepare_backbone_features(out)
        if self.model.directly_add_no_mem_embed:
            feats[-1] = feats[-1] + self.model.no_mem_embed
        b = images.shape[0]
        maps = [f.permute(1, 2, 0).reshape(b, -1, *hw) for f, hw in zip(feats, sizes, strict=True)]
        return maps[-1], maps[:-1]

    @torch.no_grad()
    def forward(self, images: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
        """images: (B, 3, H, W) in [-1, 1] -> (B, N, gh, gw) float32 raw mask logits."""
        embed, high_res = self._encode(images)
        points = self.point_grid(images.device)
        dense_pe = self.model.sam_prompt_encoder.get_dense_pe()
        out = []
        for i in range(images.shape[0]):
            logits = []
            for start in range(0, len(points), self.chunk):
                pts = points[start:start + self.chunk, None]  # (n, 1, 2)
                labels = torch.ones(pts.shape[:2], dtype=torch.int, device=images.device)
                sparse, dense = self.model.sam_prompt_encoder(points=(pts, labels), boxes=None,
                                                              masks=None)
                masks = self.model.sam_mask_decoder(
                    image_embeddings=embed[i:i + 1], image_pe=dense_pe,
                    sparse_prompt_embeddings=sparse, dense_prompt_embeddings=dense,
                    multimask_output=False, repeat_image=True,
                    high_res_features=[f[i:i + 1] for f in high_res])[0]
                logits.append(masks[:, 0].clamp(-32.0, 32.0))  # (n, h, w)
            stacked = torch.cat(logits)[None].float()  # (1, N, h, w)
            out.append(resample_tokens(_fit_aspect(stacked, images.shape[-2:]), grid))
        return torch.cat(out)


def _fit_aspect(maps: torch.Tensor, hw: tuple[int, int]) -> torch.Tensor:
    """SAM sees a square resize; map its square logits back to the input's aspect ratio."""
    h, w = hw
    if h == w:
        return maps
    s = maps.shape[-1]
    size = (s, max(1, round(s * w / h))) if w > h else (max(1, round(s * h / w)), s)
    return F.interpolate(maps, size=size, mode="bilinear", align_corners=False)


def build_sam2_teacher(config: str = "configs/sam2.1/sam2.1_hiera_l.yaml",
                       checkpoint: str | None = None, image_size: int = 1024,
                       points_per_side: int = 32, chunk: int = 256, seed: int | None = 0,
                       device: str | torch.device = "cpu") -> SAM2MaskTeacher:
    """Build a frozen SAM 2 teacher from any SAM 2 / 2.1 ``config`` (a name inside the sam2
    package such as ``configs/sam2.1/sam2.1_hiera_t.yaml``) and ``checkpoint`` (the official
    ``.pt``; None gives random weights, seeded by ``seed``, for tests). ``image_size`` other
    than 1024 overrides the model's input size (only meaningful with random weights or for
    quick checks)."""
    build_sam = import_sam2()
    overrides = [] if image_size == 1024 else [f"++model.image_size={int(image_size)}"]
    if checkpoint is None:
        log.warning("SAM 2 teacher %s has random weights (seed %s)", config, seed)
    with seeded(seed):
        model = build_sam.build_sam2(config, ckpt_path=checkpoint, device=str(device),
                                     mode="eval", hydra_overrides_extra=overrides,
                                     apply_postprocessing=False)
    info = {"config": config, "checkpoint": checkpoint, "seed": seed}
    return SAM2MaskTeacher(model, points_per_side=points_per_side, chunk=chunk, info=info)
