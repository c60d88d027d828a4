"""The ViTDet parts of our Mask R-CNN (pe_dense.tasks.detection.roi): level assignment,
aligned pooling, mask targets and pasting, losses; equal to detectron2's where it is installed."""

from __future__ import annotations

import pytest
import torch
from torchvision.ops import roi_align

from pe_dense.tasks.detection.roi import (
    LevelRoIAlign,
    ViTDetRoIHeads,
    assign_levels,
    crop_masks,
    paste_masks,
)


def _features(seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {f"p{i}": torch.randn(2, 3, 256 // 2**i, 256 // 2**i, generator=g) for i in (2, 3, 4, 5)}


def _boxes(seed: int = 1) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    out = []
    for n in (7, 5):
        xy = torch.rand(n, 2, generator=g) * 150
        wh = torch.rand(n, 2, generator=g) * 250 + 2
        out.append(torch.cat([xy, xy + wh], dim=1))
    return out


def test_levels_follow_box_size() -> None:
    boxes = torch.tensor([[0, 0, 10, 10], [0, 0, 112, 112], [0, 0, 224, 224], [0, 0, 447, 447],
                          [0, 0, 448, 448], [0, 0, 2000, 2000]], dtype=torch.float32)
    # floor(4 + log2(sqrt(area) / 224)), clamped to levels 2..5, minus 2.
    assert assign_levels(boxes, 2, 5).tolist() == [0, 1, 2, 2, 3, 3]


def test_pooler_pools_each_box_at_its_level_aligned() -> None:
    feats, boxes = _features(), _boxes()
    pool = LevelRoIAlign(["p2", "p3", "p4", "p5"], [4, 8, 16, 32], 7)
    out = pool(feats, boxes)
    assert out.shape == (12, 3, 7, 7)
    rois = torch.cat([torch.cat([torch.full((len(b), 1), float(i)), b], 1)
                      for i, b in enumerate(boxes)])
    levels = assign_levels(rois[:, 1:], 2, 5)
    for r in range(len(rois)):
        lvl = int(levels[r])
        ref = roi_align(feats[f"p{lvl + 2}"], rois[r:r + 1], 7, 1 / 4 / 2**lvl, 0, aligned=True)
        torch.testing.assert_close(out[r], ref[0])


def test_pooler_rejects_strides_that_are_not_powers_of_two() -> None:
    with pytest.raises(ValueError, match="powers of 2"):
        LevelRoIAlign(["a", "b"], [4, 12], 7)


def test_crop_masks_cut_the_box_and_binarise() -> None:
    masks = torch.zeros(1, 64, 64, dtype=torch.uint8)
    masks[0, 16:48, 16:32] = 1          # left half of the box below is the object
    out = crop_masks(masks, torch.tensor([[16.0, 16.0, 48.0, 48.0]]), 8)
    assert out.dtype == torch.bool
    assert out[0, :, :4].all() and not out[0, :, 4:].any()


def test_paste_masks_fill_the_box() -> None:
    masks = torch.ones(1, 1, 28, 28)
    out = paste_masks(masks, torch.tensor([[10.0, 20.0, 30.0, 40.0]]), (50, 60))
    assert out.shape == (1, 50, 60)
    inside = out[0, 21:39, 11:29]
    assert torch.all(inside > 0.99) and out[0, :19].sum() == 0 and out[0, :, :9].sum() == 0


def test_box_loss_is_l1_over_all_sampled_rois() -> None:
    heads = ViTDetRoIHeads(None, None, None, 0.5, 0.5, 512, 0.25, (10.0, 10.0, 5.0, 5.0),
                           0.05, 0.5, 100)
    labels = [torch.tensor([0, 2, 1, 0])]
    targets = [torch.tensor([[9.0] * 4, [1.0, 2.0, 3.0, 4.0], [0.5] * 4, [9.0] * 4])]
    deltas = torch.zeros(4, 12)
    logits = torch.zeros(4, 3)
    losses = heads._box_losses(logits, deltas, labels, targets)
    # foreground RoIs only, class-specific deltas, L1 summed and divided by all 4 RoIs
    assert losses["loss_box_reg"].item() == pytest.approx((10.0 + 2.0) / 4)
    assert losses["loss_classifier"].item() == pytest.approx(torch.log(torch.tensor(3.0)).item())


# ---------------------------------------------------------------- detectron2, where installed


def test_pooler_equals_detectron2_roipooler() -> None:
    poolers = pytest.importorskip("detectron2.modeling.poolers")
    from detectron2.structures import Boxes

    feats, boxes = _features(), _boxes()
    ref = poolers.ROIPooler((7, 7), (1 / 4, 1 / 8, 1 / 16, 1 / 32), 0, "ROIAlignV2")
    expected = ref([feats[f"p{i}"] for i in (2, 3, 4, 5)], [Boxes(b) for b in boxes])
    ours = LevelRoIAlign(["p2", "p3", "p4", "p5"], [4, 8, 16, 32], 7)(feats, boxes)
    torch.testing.assert_close(ours, expected)


def test_mask_targets_equal_detectron2_bitmasks() -> None:
    structures = pytest.importorskip("detectron2.structures")
    g = torch.Generator().manual_seed(3)
    masks = torch.rand(5, 80, 96, generator=g) > 0.5
    boxes = torch.cat([torch.rand(5, 2, generator=g) * 40, torch.rand(5, 2, generator=g) * 40
                       + 45], dim=1)
    expected = structures.BitMasks(masks).crop_and_resize(boxes, 28)
    assert torch.equal(crop_masks(masks, boxes, 28), expected)


def test_paste_equals_detectron2() -> None:
    mask_ops = pytest.importorskip("detectron2.layers.mask_ops")
    g = torch.Generator().manual_seed(4)
    probs = torch.rand(6, 1, 28, 28, generator=g)
    boxes = torch.cat([torch.rand(6, 2, generator=g) * 50, torch.rand(6, 2, generator=g) * 50
                       + 60], dim=1)
    expected = mask_ops.paste_masks_in_image(probs[:, 0], boxes, (120, 130), threshold=0.5)
    ours = paste_masks(probs, boxes, (120, 130)) >= 0.5
    mismatch = (ours != expected).float().mean().item()
    assert mismatch < 1e-3, mismatch
