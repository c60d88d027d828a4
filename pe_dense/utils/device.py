"""The one device picker: ``"auto"`` means CUDA when torch sees a GPU, else CPU."""

from __future__ import annotations

import torch

__all__ = ["pick_device"]


def pick_device(name: str | torch.device | None = "auto") -> torch.device:
    """``"auto"`` (or None) -> cuda when available, else cpu; any other name as given.

    Asking for cuda when torch sees no GPU is a ``ValueError`` that says to use cpu.
    """
    if name is None or name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {name}: no CUDA GPU is visible to torch; use --device cpu")
    return device
