"""Depth metrics and losses against hand-computed values."""

from __future__ import annotations

import math

import pytest
import torch

from pe_dense.evaluation.depth import DepthEvaluator, depth_errors, eigen_crop_mask
from pe_dense.tasks.depth.losses import gradient_loss, silog_loss


def test_eigen_crop_is_rows_45_471_cols_41_601():
    mask = eigen_crop_mask(480, 640)
    assert int(mask.sum()) == (471 - 45) * (601 - 41)
    assert mask[45, 41] and mask[470, 600] and not mask[44, 41] and not mask[45, 601]


def test_errors_for_a_constant_ratio_by_hand():
    gt = torch.tensor([[1.0, 2.0], [4.0, 8.0]])
    pred = 1.1 * gt
    e = depth_errors(pred, gt, eigen_crop=False)
    assert e["d1"] == e["d2"] == e["d3"] == 1.0
    assert e["abs_rel"] == pytest.approx(0.1)
    assert e["sq_rel"] == pytest.approx(0.01 * (1 + 2 + 4 + 8) / 4)
    assert e["rmse"] == pytest.approx(0.1 * math.sqrt((1 + 4 + 16 + 64) / 4))
    assert e["rmse_log"] == pytest.approx(math.log(1.1))
    assert e["log10"] == pytest.approx(math.log10(1.1))
    assert e["silog"] == pytest.approx(0.0, abs=1e-6)  # scale-invariant


def test_deltas_and_silog_by_hand():
    gt = torch.ones(1, 4)
    pred = torch.tensor([[1.0, 1.3, 1.6, 2.0]])  # ratios vs 1.25, 1.5625, 1.953
    e = depth_errors(pred, gt, eigen_crop=False)
    assert (e["d1"], e["d2"], e["d3"]) == (0.25, 0.5, 0.75)
    logs = torch.log(pred).double()
    assert e["silog"] == pytest.approx(100 * math.sqrt((logs**2).mean() - logs.mean() ** 2))


def test_valid_range_and_clipping():
    gt = torch.tensor([[0.0, 2.0, 12.0, float("nan")]])
    pred = torch.tensor([[5.0, float("nan"), 3.0, 3.0]])
    e = depth_errors(pred, gt, min_depth=1e-3, max_depth=10.0, eigen_crop=False)
    # only gt=2 is valid; its NaN prediction becomes min_depth
    assert e["abs_rel"] == pytest.approx(abs(2 - 1e-3) / 2)
    assert depth_errors(torch.ones(2, 2), torch.zeros(2, 2), eigen_crop=False) is None


def test_metrics_are_averaged_per_image():
    ev = DepthEvaluator(eigen_crop=False)
    ev.update(torch.full((1, 1), 2.0), torch.full((1, 1), 1.0))  # abs_rel 1.0, 1 pixel
    ev.update(torch.full((3, 3), 1.0), torch.full((3, 3), 1.0))  # abs_rel 0.0, 9 pixels
    ev.update(torch.ones(2, 2), torch.zeros(2, 2))  # no valid pixel: skipped
    m = ev.compute()
    assert m["abs_rel"] == pytest.approx(0.5)  # pooled over pixels would be 0.1
    assert m["num_images"] == 2 and m["skipped"] == 1


def test_silog_loss_by_hand():
    target = torch.tensor([1.0, 2.0, 4.0, 0.0])  # last pixel invalid
    pred = torch.tensor([2.0, 2.0, 2.0, 5.0])
    g = torch.log(pred[:3] + 1e-3) - torch.log(target[:3] + 1e-3)
    expected = torch.sqrt(g.var() + 0.15 * g.mean() ** 2)
    assert silog_loss(pred, target).item() == pytest.approx(expected.item(), rel=1e-5)
    assert silog_loss(pred, target, scale=10.0).item() == pytest.approx(10 * expected.item(),
                                                                        rel=1e-5)
    # a global scale error leaves only the mean term: sqrt(0.15) * log(3)
    assert silog_loss(target[:3] * 3, target[:3]).item() == pytest.approx(
        math.sqrt(0.15) * math.log(3), rel=1e-3)
    with pytest.raises(ValueError, match="differ"):
        silog_loss(pred[:2], target)


def test_gradient_loss_is_scale_invariant_and_positive_for_wrong_structure():
    target = torch.rand(1, 1, 16, 16) * 5 + 1
    wrong = gradient_loss(torch.full_like(target, 3.0), target).item()
    assert wrong > 0.1
    assert gradient_loss(target * 2.0, target).item() < 0.01 * wrong  # up to the 1e-3 eps
