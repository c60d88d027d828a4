"""Running a dense model on plain images (the ``predict_images`` of the task models)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch import nn

from pe_dense.data.transforms import to_input

__all__ = ["predict_on_images"]


@torch.no_grad()
def predict_on_images(model: nn.Module, images: Sequence[np.ndarray],
                      post: Callable[[torch.Tensor], torch.Tensor]) -> list[np.ndarray]:
    """``post(model.inference(x))`` as numpy for each uint8 (H, W, 3) RGB image, fed as a
    (1, 3, H, W) input in [-1, 1] on the model's device; eval mode, the training flag restored."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    try:
        return [post(model.inference(to_input(im)[None].to(device))).cpu().numpy()
                for im in images]
    finally:
        model.train(was_training)
