"""Shared test fixtures: tiny models and the optional real sample data in ../shared/data."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
DATA_ROOT = Path(os.environ.get("PE_DENSE_DATA", DEFAULT_DATA))


@pytest.fixture
def shared_data() -> Path:
    """../shared/data (or $PE_DENSE_DATA); skips the test when it is absent."""
    if not DATA_ROOT.is_dir():
        pytest.skip(f"real sample data not found at {DATA_ROOT}")
    return DATA_ROOT


def data_dir(name: str) -> Path:
    """A sub-folder of the sample data, or a skip."""
    path = DATA_ROOT / name
    if not path.is_dir():
        pytest.skip(f"sample data {path} not found")
    return path


@pytest.fixture(autouse=True)
def _seed_and_threads():
    torch.manual_seed(0)
    yield
