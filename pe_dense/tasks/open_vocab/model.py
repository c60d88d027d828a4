"""What the text-prompted segmenters share: cosine logits against class vectors, results with
per-prompt score maps, and running one image at a chosen resolution.

A :class:`TextSegmenter` is a :class:`pe_dense.tasks.common.DenseModel` whose ``encode`` gives
dense embeddings (B, D, h, w) and whose :meth:`class_vectors` gives one (D,) vector per output
class (the prompts, plus a learned background first when the model has one); ``decode`` is
``scale * cos(embedding, class vector)`` upsampled to the image.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch
import torch.nn.functional as F

from pe_dense.data.images import check_rgb, to_tensor
from pe_dense.data.transforms import resize_to_multiple
from pe_dense.tasks.common import DenseModel

__all__ = ["TextSegmenter", "segment_image"]


class TextSegmenter(DenseModel):
    """Base of :class:`~pe_dense.tasks.open_vocab.dense_clip.ClipSegmenter` and
    :class:`~pe_dense.tasks.open_vocab.bridge.BridgeSegmenter`.

    ``class_names``: the output classes in order (``"background"`` first for models with a
    background vector); ``prompts``: the text prompts (the class names without background).
    """

    task = "segmentation"
    has_background = False

    @property
    def class_names(self) -> tuple[str, ...]:
        return (("background",) if self.has_background else ()) + tuple(self.prompts)

    def class_vectors(self) -> torch.Tensor:
        """(K, D) class vectors in the space of ``encode``'s output."""
        raise NotImplementedError

    def logit_scale(self) -> torch.Tensor:
        raise NotImplementedError

    def decode(self, features: torch.Tensor, image_size: tuple[int, int]) -> torch.Tensor:
        """features: (B, D, h, w) -> logits (B, K, H, W) = scale * cosine, bilinear to H x W."""
        classes = F.normalize(self.class_vectors(), dim=-1).to(features.dtype)
        feats = F.normalize(features, dim=1)
        logits = torch.einsum("bdhw,kd->bkhw", feats, classes) * self.logit_scale()
        return F.interpolate(logits, size=tuple(image_size), mode="bilinear",
                             align_corners=False)

    def image_result(self, output: torch.Tensor, sample: Mapping,
                     size: tuple[int, int]) -> dict:
        """``{"pred": (h, w) int64, "scores": (K, h, w) softmax}`` (+ ``label``, ``path``)."""
        gt = sample.get("gt_label")
        if gt is not None and tuple(gt.shape) != tuple(output.shape[-2:]):
            output = F.interpolate(output, size=tuple(gt.shape), mode="bilinear",
                                   align_corners=False)
        result = {"pred": output[0].argmax(0).cpu(), "scores": output[0].softmax(0).cpu()}
        if gt is not None:
            result["label"] = gt.cpu()
        if "path" in sample:
            result["path"] = sample["path"]
        return result


@torch.no_grad()
def segment_image(model: TextSegmenter, image: np.ndarray,
                  short_side: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """One (H, W, 3) uint8 RGB image -> (labels (H, W) int64, scores (K, H, W) float32).

    The image is resized so its short side is ``short_side`` (rounded to the patch size; None
    keeps its size, padded), run in one pass, and the logits resized back to H x W.
    """
    was_training = model.training
    model.eval()
    try:
        device = next(model.parameters()).device
        t = to_tensor(check_rgb(image))[None]
        h, w = t.shape[-2:]
        if short_side:
            t = resize_to_multiple(t, short_side, model.size_divisor)
        x = model.preprocess(_pad(t, model.size_divisor).to(device), [tuple(t.shape[-2:])])
        logits = model.decode(model.encode(x), tuple(x.shape[-2:]))
        logits = logits[..., : t.shape[-2], : t.shape[-1]]
        logits = F.interpolate(logits, size=(h, w), mode="bilinear", align_corners=False)[0]
        return logits.argmax(0).cpu().numpy(), logits.softmax(0).float().cpu().numpy()
    finally:
        model.train(was_training)


def _pad(t: torch.Tensor, multiple: int) -> torch.Tensor:
    ph, pw = -t.shape[-2] % multiple, -t.shape[-1] % multiple
    return F.pad(t, (0, pw, 0, ph)) if ph or pw else t
