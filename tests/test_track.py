"""Label propagation maths and the online Tracker API (tiny random PE-Test model, CPU)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from pe_dense import create_backbone
from pe_dense.tracking import LayerSweepTracker, Tracker
from pe_dense.tracking.propagation import (
    downsample_labels,
    labels_from_soft,
    neighborhood_mask,
    one_hot,
    propagate,
)


def _reference_propagate(query, keys, labels, grid, topk, temperature, radius):
    """The protocol written out densely: exp(s/T) * window, top-k over the stacked context,
    column-normalise, labels @ affinity."""
    n, hw, _ = keys.shape
    aff = torch.exp(torch.einsum("nkc,qc->nkq", keys, query) / temperature)  # (n, hw_k, hw_q)
    aff = aff * neighborhood_mask(*grid, radius).t().float()[None]
    aff = aff.reshape(n * hw, hw)
    kth = aff.topk(topk, dim=0).values.min(0).values
    aff = torch.where(aff < kth, torch.zeros_like(aff), aff)
    aff = aff / aff.sum(0, keepdim=True)
    segs = labels.permute(1, 0, 2).reshape(labels.shape[1], n * hw)
    return segs @ aff


@pytest.mark.parametrize("radius", [0, 1, 2])
def test_propagate_matches_dense_formulation(radius):
    grid, n, c, k = (5, 6), 3, 8, 4
    hw = grid[0] * grid[1]
    query = F.normalize(torch.randn(hw, c), dim=1)
    keys = F.normalize(torch.randn(n, hw, c), dim=1)
    labels = torch.rand(n, k, hw)
    got = propagate(query, keys, labels, grid, topk=5, temperature=0.1, radius=radius)
    ref = _reference_propagate(query, keys, labels, grid, 5, 0.1, radius if radius else 100)
    torch.testing.assert_close(got, ref, rtol=1e-4, atol=1e-5)


def test_neighborhood_is_a_square_window():
    near = neighborhood_mask(4, 5, 1)
    assert near.shape == (20, 20)
    q = 1 * 5 + 2  # patch (1, 2)
    allowed = {(y, x) for y in range(4) for x in range(5) if near[q, y * 5 + x]}
    assert allowed == {(y, x) for y in (0, 1, 2) for x in (1, 2, 3)}


def test_topk_is_joint_over_context():
    # Frame 0 holds the 5 best keys for every query, so frame 1's labels must not leak in.
    grid, c = (2, 2), 4
    query = F.normalize(torch.randn(4, c), dim=1)
    good = query[None].repeat(1, 1, 1)
    bad = -query[None]
    keys = torch.cat([good, good, good, good, good, bad])
    labels = torch.cat([one_hot(torch.zeros(2, 2, dtype=torch.long), 2)[None]] * 5
                       + [one_hot(torch.ones(2, 2, dtype=torch.long), 2)[None]])
    soft = propagate(query, keys, labels, grid, topk=5, temperature=0.1, radius=0)
    assert torch.allclose(soft[0], torch.ones(4))


def test_downsample_and_upsample_labels():
    labels = torch.zeros(32, 48, dtype=torch.long)
    labels[:16, :16] = 2
    small = downsample_labels(labels, (2, 3))
    assert small.tolist() == [[2, 0, 0], [0, 0, 0]]
    hard = labels_from_soft(one_hot(small, 3), (2, 3), 16, (32, 48))
    assert hard.shape == (32, 48) and (hard == labels).float().mean() > 0.9


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    return create_backbone("PE-Test").eval()


def _frames(n=4, size=(64, 96)):
    rng = np.random.default_rng(0)
    return [rng.integers(0, 256, (*size, 3), dtype=np.uint8) for _ in range(n)]


def test_tracker_static_video_keeps_masks(tiny):
    frames = _frames(1) * 5
    mask = np.zeros((64, 96), np.uint8)
    mask[:32, :48] = 1
    mask[32:, 48:] = 2
    tracker = Tracker(tiny, layer=-1, short_side=64)
    assert (tracker.reset(frames[0], mask) == mask).all()
    for frame in frames[1:]:
        out = tracker.update(frame)
        assert out.shape == mask.shape and out.dtype == np.uint8
        assert (out == mask).mean() > 0.9
    assert tracker.num_objects == 2 and tracker.num_frames == 5


def test_tracker_context_is_bounded_and_objects_can_appear_later(tiny):
    frames = _frames(12)
    mask = np.zeros((64, 96), bool)
    mask[:32, :32] = True
    tracker = Tracker(tiny, short_side=64, n_last_frames=3)
    tracker.reset(frames[0], mask[None])  # (N, H, W) boolean form
    late = np.zeros((64, 96), np.uint8)
    late[40:, 60:] = 7
    for i, frame in enumerate(frames[1:], 1):
        out = tracker.update(frame, masks=late if i == 4 else None)
        if i == 4:
            assert (out[late > 0] == 7).all()
    state = tracker._sweep.states[-1]
    assert len(state.queue) == 3 and len(state.references) == 2
    assert tracker.num_objects == 7 and set(np.unique(out)) <= {0, 1, 7}


def test_layer_sweep_equals_single_layer_trackers(tiny):
    frames = _frames(4)
    mask = np.zeros((64, 96), np.uint8)
    mask[16:48, 16:64] = 1
    sweep = LayerSweepTracker(tiny, layers=[1, 3], short_side=64)
    single = Tracker(tiny, layer=1, short_side=64)
    sweep.reset(frames[0], mask)
    single.reset(frames[0], mask)
    for frame in frames[1:]:
        both = sweep.update(frame)
        assert (both[1] == single.update(frame)).all()
        assert set(both) == {1, 3}


def test_tracker_bad_input(tiny):
    tracker = Tracker(tiny, short_side=64)
    frame = _frames(1)[0]
    with pytest.raises(RuntimeError, match="reset"):
        tracker.update(frame)
    with pytest.raises(ValueError, match="frame's size"):
        tracker.reset(frame, np.zeros((64, 95), np.uint8))
    with pytest.raises(ValueError, match="uint8 RGB"):
        tracker.reset(frame.astype(np.float32), np.zeros((64, 96), np.uint8))
    with pytest.raises(ValueError, match="out of range"):
        Tracker(tiny, layer=9)
    tracker.reset(frame, np.zeros((64, 96), np.uint8))
    with pytest.raises(ValueError, match="video started"):
        tracker.update(frame[:32])


def test_tracker_follows_a_moving_square(tiny):
    # A red square slides one patch per frame over a textured background; even random patch
    # features separate the colours, so label propagation must follow it (the first-frame mask
    # no longer overlaps it at the end).
    rng = np.random.default_rng(1)
    background = rng.integers(0, 120, (128, 128, 3), dtype=np.uint8)

    def frame(x):
        f = background.copy()
        f[32:80, x:x + 48] = (230, 30, 30)
        m = np.zeros((128, 128), np.uint8)
        m[32:80, x:x + 48] = 1
        return f, m

    tracker = Tracker(tiny, layer=0, short_side=128)
    f0, m0 = frame(0)
    tracker.reset(f0, m0)
    ious = []
    for x in range(16, 81, 16):
        f, m = frame(x)
        out = tracker.update(f) == 1
        ious.append((out & (m == 1)).sum() / (out | (m == 1)).sum())
    assert min(ious) > 0.8, ious
    assert not ((m0 == 1) & (m == 1)).any()


def test_one_backbone_pass_per_frame(tiny, monkeypatch):
    calls = []
    original = tiny.forward_intermediates

    def counting(x, indices=1, **kwargs):
        calls.append(list(indices))
        return original(x, indices=indices, **kwargs)

    monkeypatch.setattr(tiny, "forward_intermediates", counting)
    frames = _frames(5)
    sweep = LayerSweepTracker(tiny, layers=[0, 2, 3], short_side=64)
    sweep.reset(frames[0], np.ones((64, 96), np.uint8))
    for frame in frames[1:]:
        sweep.update(frame)
    assert calls == [[0, 2, 3]] * 5
