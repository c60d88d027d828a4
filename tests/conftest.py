"""Shared test fixtures: tiny models and the optional real sample data in ../shared/data."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data"
DATA_ROOT = Path(os.environ.get("PE_DENSE_DATA", DEFAULT_DATA))


@pytest.fixture
def shared_data() -> Path:
    """../shared/data (or $PE_DENSE_DATA); skips the test when it is absent."""
    if not DATA_ROOT.is_dir():
        pytest.skip(f"real sample data not found at {DATA_ROOT}")
    return DATA_ROOT


@pytest.fixture(scope="session")
def shapes(tmp_path_factory) -> Path:
    """A tiny synthetic shapes set: 64 px, 8 train / 4 val (tools/make_shapes_dataset.py)."""
    out = tmp_path_factory.mktemp("shapes64")
    subprocess.run([sys.executable, str(ROOT / "tools/make_shapes_dataset.py"), str(out),
                    "--size", "64", "--train", "8", "--val", "4"], check=True,
                   capture_output=True)
    return out


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
