"""Segmentation metric: hand-computed values and mmseg's definitions (dataset totals, nan-mean)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from pe_dense.evaluation.segmentation import (
    SegmentationEvaluator,
    areas_to_metrics,
    intersect_and_union,
)


def test_intersect_and_union_by_hand():
    # 3 classes, ignore 255. Non-ignored pixels: (pred, label) pairs below.
    label = torch.tensor([[0, 0, 1, 255], [1, 2, 2, 255]])
    pred = torch.tensor([[0, 1, 1, 2], [1, 2, 0, 0]])
    inter, union, area_pred, area_label = intersect_and_union(pred, label, 3, 255)
    # kept pairs: (0,0) (1,0) (1,1) (1,1) (2,2) (0,2)
    assert inter.tolist() == [1, 2, 1]
    assert area_pred.tolist() == [2, 3, 1]
    assert area_label.tolist() == [2, 2, 2]
    assert union.tolist() == [3, 3, 2]


def test_metrics_by_hand_single_image():
    label = torch.tensor([[0, 0, 1, 255], [1, 2, 2, 255]])
    pred = torch.tensor([[0, 1, 1, 2], [1, 2, 0, 0]])
    ev = SegmentationEvaluator(num_classes=3, ignore_index=255)
    ev.update(pred, label)
    m = ev.compute()
    # IoU = 1/3, 2/3, 1/2 ; Acc = 1/2, 2/2, 1/2 ; aAcc = 4/6
    assert m["mIoU"] == pytest.approx(100 * (1 / 3 + 2 / 3 + 1 / 2) / 3)
    assert m["mAcc"] == pytest.approx(100 * (1 / 2 + 1 + 1 / 2) / 3)
    assert m["aAcc"] == pytest.approx(100 * 4 / 6)


def test_areas_are_summed_over_the_dataset_not_averaged_per_image():
    ev = SegmentationEvaluator(num_classes=2, ignore_index=255)
    # image 1: class 0 perfect on 1 pixel; image 2: class 0, 9 pixels, 3 predicted as 1.
    ev.update(torch.tensor([[0]]), torch.tensor([[0]]))
    ev.update(torch.tensor([[0] * 6 + [1] * 3]), torch.tensor([[0] * 9]))
    m = ev.compute()
    iou0 = 7 / 10  # totals: I=7, U = pred 7 + label 10 - 7
    # class 1 never labelled but predicted 3 times: IoU 0 (union 3), Acc NaN (no label)
    assert m["IoU"][0] == pytest.approx(100 * iou0)
    assert m["IoU"][1] == 0.0
    assert math.isnan(m["Acc"][1])
    assert m["mIoU"] == pytest.approx(100 * iou0 / 2)
    assert m["mAcc"] == pytest.approx(100 * 7 / 10)  # nan-mean over the labelled class only
    per_image_mean = (1.0 + 6 / 9) / 2
    assert m["IoU"][0] != pytest.approx(100 * per_image_mean)


def test_absent_classes_are_nan_and_excluded():
    m = areas_to_metrics(torch.tensor([2.0, 0.0, 0.0]), torch.tensor([4.0, 0.0, 1.0]),
                         torch.tensor([3.0, 0.0, 1.0]), torch.tensor([3.0, 0.0, 0.0]))
    assert math.isnan(m["IoU"][1]) and m["IoU"][2] == 0.0
    assert m["mIoU"] == pytest.approx(100 * (0.5 + 0.0) / 2)
    assert m["aAcc"] == pytest.approx(100 * 2 / 3)


def test_matches_histc_reference_on_random_maps():
    """The mmseg formulation (torch.histc over masked pixels) on random data."""
    gen = torch.Generator().manual_seed(0)
    k, ignore = 5, 255
    ev = SegmentationEvaluator(num_classes=k, ignore_index=ignore)
    totals = np.zeros((4, k))
    for _ in range(3):
        label = torch.randint(0, k, (17, 23), generator=gen)
        label[torch.rand(17, 23, generator=gen) < 0.2] = ignore
        pred = torch.randint(0, k, (17, 23), generator=gen)
        ev.update(pred, label)
        mask = label != ignore
        p, lab = pred[mask].float(), label[mask].float()
        i = torch.histc(p[p == lab], bins=k, min=0, max=k - 1)
        ap = torch.histc(p, bins=k, min=0, max=k - 1)
        al = torch.histc(lab, bins=k, min=0, max=k - 1)
        totals += np.stack([i, ap + al - i, ap, al])
    m = ev.compute()
    ref_iou = totals[0] / totals[1]
    assert m["mIoU"] == pytest.approx(100 * np.nanmean(ref_iou))
    assert m["aAcc"] == pytest.approx(100 * totals[0].sum() / totals[3].sum())


def test_bad_inputs():
    with pytest.raises(ValueError, match="outside 0..2"):
        intersect_and_union(torch.zeros(2, 2), torch.tensor([[0, 3], [1, 255]]), 3)
    with pytest.raises(ValueError, match="differ in size"):
        intersect_and_union(torch.zeros(2, 3), torch.zeros(2, 2), 3)
    with pytest.raises(RuntimeError, match="empty"):
        SegmentationEvaluator(num_classes=3).compute()
