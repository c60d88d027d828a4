"""Reproducible random initialisation without touching the caller's random state."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch

__all__ = ["seeded"]


@contextmanager
def seeded(seed: int | None) -> Iterator[None]:
    """Inside the block, torch's CPU generator starts from ``seed`` (None: left as it is); the
    global RNG state is restored after, so building a seeded model changes nothing else."""
    with torch.random.fork_rng(devices=[]):
        if seed is not None:
            torch.manual_seed(seed)
        yield
