"""SAM 2 / 2.1 as a distillation teacher: raw mask logits for a grid of point prompts.

Recipe (PE paper, section 5): the image is resized to the model's input size (1024 x 1024 for
the released checkpoints), each point of a 32 x 32 grid is one prompt, and the unthresholded
single-mask logit of every prompt is kept; the N maps are stacked into an (N, H, W) "feature map"
and pooled down to the student's token grid (the grid, the per-image loop and the resampling are
:class:`pe_dense.distill.prompt_teacher.PointPromptTeacher`'s).

This module never imports the ``sam2`` package: :class:`SAM2MaskTeacher` wraps an already built
``sam2.modeling.sam2_base.SAM2Base`` (use :func:`pe_dense.integrations.sam2.build_sam2_teacher`,
which builds it, ``pip install 'pe-dense[sam2]'``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from pe_dense.distill.prompt_teacher import PointPromptTeacher
from pe_dense.utils.modules import freeze

__all__ = ["SAM2MaskTeacher", "IMAGENET_MEAN", "IMAGENET_STD"]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class SAM2MaskTeacher(PointPromptTeacher):
    """Frozen SAM 2 model -> (B, N, gh, gw) mask-logit maps, N = ``points_per_side``^2.

    ``model`` is a ``sam2.modeling.sam2_base.SAM2Base`` (its ``image_size`` is the input size).
    ``chunk`` prompts go through the mask decoder at once. Logits are the decoder's
    low-resolution output (``image_size / 4``), clamped to [-32, 32] as SAM 2 does, then
    average-pooled (or bilinearly resampled) to the grid.

    Input: the student's view in PE's [-1, 1] (the teacher contract of
    :mod:`pe_dense.distill.teachers`). SAM 2's own input normalisation (ImageNet mean and std of
    [0, 1] RGB) is applied directly to it, with the statistics written in that range:
    ``(x - (2 mean - 1)) / (2 std)`` equals ``((x + 1) / 2 - mean) / std``.
    """

    def __init__(self, model: nn.Module, points_per_side: int = 32, chunk: int = 256,
                 info: dict[str, Any] | None = None) -> None:
        super().__init__(points_per_side, image_size=int(model.image_size))
        self.model = model
        self.chunk = chunk
        self._info = dict(info or {})
        freeze(self)  # no gradients, and eval mode even under a parent's train()

    def describe(self) -> dict[str, Any]:
        return {"kind": "sam2", **self._info, "image_size": self.image_size,
                "points_per_side": self.points_per_side, "out_channels": self.out_channels}

    def sam_input(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) in [-1, 1] -> (B, 3, S, S) SAM 2 input (ImageNet-normalised), S =
        ``image_size``."""
        x = F.interpolate(images.float(), size=(self.image_size, self.image_size),
                          mode="bilinear", align_corners=False)
        mean = 2 * x.new_tensor(IMAGENET_MEAN).view(1, 3, 1, 1) - 1
        std = 2 * x.new_tensor(IMAGENET_STD).view(1, 3, 1, 1)
        return (x - mean) / std

    def _encode(self, images: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """images (B, 3, H, W) in [-1, 1] -> image embedding and high-resolution features."""
        out = self.model.forward_image(self.sam_input(images))
        _, feats, _, sizes = self.model._prepare_backbone_features(out)
        if self.model.directly_add_no_mem_embed:
            feats[-1] = feats[-1] + self.model.no_mem_embed
        b = images.shape[0]
        maps = [f.permute(1, 2, 0).reshape(b, -1, *hw) for f, hw in zip(feats, sizes, strict=True)]
        return maps[-1], maps[:-1]

    def _logits(self, embed: torch.Tensor, high_res: list[torch.Tensor],
                points: torch.Tensor) -> torch.Tensor:
        """One image's embedding (1, C, h, w) -> (1, N, h', w') clamped mask logits."""
        dense_pe = self.model.sam_prompt_encoder.get_dense_pe()
        logits = []
        for start in range(0, len(points), self.chunk):
            pts = points[start:start + self.chunk, None]  # (n, 1, 2)
            labels = torch.ones(pts.shape[:2], dtype=torch.int, device=points.device)
            sparse, dense = self.model.sam_prompt_encoder(points=(pts, labels), boxes=None,
                                                          masks=None)
            masks = self.model.sam_mask_decoder(
                image_embeddings=embed, image_pe=dense_pe,
                sparse_prompt_embeddings=sparse, dense_prompt_embeddings=dense,
                multimask_output=False, repeat_image=True, high_res_features=high_res)[0]
            logits.append(masks[:, 0].clamp(-32.0, 32.0))  # (n, h, w)
        return torch.cat(logits)[None].float()

    def prepare(self, images: torch.Tensor, files: Sequence[str] | None = None
                ) -> tuple[torch.Tensor, list[torch.Tensor], torch.Tensor]:
        """The batch's image embeddings and high-resolution features, and the prompt grid."""
        embed, high_res = self._encode(images)
        return embed, high_res, self.point_grid(images.device)

    def prompt_logits(self, state: tuple[torch.Tensor, list[torch.Tensor], torch.Tensor],
                      index: int) -> torch.Tensor:
        """Image ``index`` -> (1, N, S/4, S/4) clamped mask logits (square, SAM's frame)."""
        embed, high_res, points = state
        return self._logits(embed[index:index + 1], [f[index:index + 1] for f in high_res],
                            points)
