"""The demo on real video frames (../shared/data/video_frames/bedroom); skips without them."""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import data_dir

cv2 = pytest.importorskip("cv2")

from pe_dense.cli import main  # noqa: E402


def test_bedroom_frames_features(tmp_path):
    frames = data_dir("video_frames") / "bedroom"
    if not frames.is_dir():
        pytest.skip(f"{frames} not found")
    out = tmp_path / "frames"
    assert main(["demo", "--source", str(frames), "--headless", "--save-frames", str(out),
                 "--max-frames", "4", "--model", "PE-Test", "--resolution", "128"]) == 0
    from PIL import Image

    pngs = sorted(out.glob("frame_*.png"))
    assert len(pngs) == 4
    first = np.asarray(Image.open(pngs[0]))
    source = np.asarray(Image.open(sorted(frames.glob("*.jpg"))[0]))
    assert first.shape == source.shape  # output keeps the frame size (960x540)
    assert first.std() > 10
    # the PCA is fitted on the first frames, then fixed: consecutive outputs stay close
    last = np.asarray(Image.open(pngs[-1])).astype(np.float32)
    assert np.abs(last[100:] - first[100:].astype(np.float32)).mean() < 60
