"""Feature and prediction pictures: PCA colouring of patch features (more to come per task)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["PCAColorizer"]


class PCAColorizer:
    """Maps (C, h, w) feature maps to RGB with a 3-component PCA that stays fixed once fitted.

    As in the PE paper's pictures, features are first mixed with a 3x3 Gaussian blur
    (``0.5 x + 0.5 blur(x)``) to suppress isolated global tokens. Fit on the first frames, then
    ``transform`` later ones with the same projection and colour range, so colours are stable.
    """

    def __init__(self, blur: bool = True) -> None:
        self.blur = blur
        self.mean: torch.Tensor | None = None
        self.components: torch.Tensor | None = None
        self.low: torch.Tensor | None = None
        self.high: torch.Tensor | None = None

    @property
    def fitted(self) -> bool:
        return self.components is not None

    def _tokens(self, feats: torch.Tensor) -> torch.Tensor:
        if feats.ndim != 3:
            raise ValueError(f"expected (C, h, w) features, got {tuple(feats.shape)}")
        x = feats.float()
        if self.blur:
            k = torch.tensor([0.25, 0.5, 0.25], device=x.device)
            kernel = (k[:, None] * k[None, :]).expand(x.shape[0], 1, 3, 3)
            x = 0.5 * x + 0.5 * F.conv2d(F.pad(x[None], (1, 1, 1, 1), mode="replicate"), kernel,
                                         groups=x.shape[0])[0]
        return x.flatten(1).t()  # (h*w, C)

    def fit(self, feats: list[torch.Tensor] | torch.Tensor) -> PCAColorizer:
        """Fit on one (C, h, w) map or a list of them."""
        maps = [feats] if isinstance(feats, torch.Tensor) else feats
        tokens = torch.cat([self._tokens(f) for f in maps])
        self.mean = tokens.mean(0)
        _, _, v = torch.linalg.svd(tokens - self.mean, full_matrices=False)
        self.components = v[:3].t()  # (C, 3)
        proj = (tokens - self.mean) @ self.components
        self.low, self.high = proj.quantile(0.01, dim=0), proj.quantile(0.99, dim=0)
        return self

    def transform(self, feats: torch.Tensor) -> torch.Tensor:
        """(C, h, w) -> (h, w, 3) uint8 RGB."""
        if not self.fitted:
            raise RuntimeError("call fit() before transform()")
        c, h, w = feats.shape
        proj = (self._tokens(feats) - self.mean.to(feats.device)) @ self.components.to(feats.device)
        low, high = self.low.to(feats.device), self.high.to(feats.device)
        rgb = ((proj - low) / (high - low).clamp_min(1e-6)).clamp(0, 1)
        return (rgb.reshape(h, w, 3) * 255).round().to(torch.uint8)

    def __call__(self, feats: torch.Tensor) -> torch.Tensor:
        """Fit on the first call, then transform."""
        if not self.fitted:
            self.fit(feats)
        return self.transform(feats)
