"""Segmentation heads, the Segmentor (whole / slide inference, frozen backbone, the uint8 input
contract), data and errors. Plain PyTorch: no mmengine needed."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import data_dir
from PIL import Image

from pe_dense import create_backbone
from pe_dense.data.segmentation import (
    CAMVID_CLASSES,
    RandomCrop,
    SegFolderDataset,
    build_seg_transforms,
    seg_collate,
)
from pe_dense.tasks.common import pad_to_multiple
from pe_dense.tasks.segmentation.heads import LinearConvHead, LinearHead, UPerHead
from pe_dense.tasks.segmentation.model import Segmentor


@pytest.fixture(autouse=True)
def _one_thread():
    # Tiny models: one thread is fastest, and immune to OpenMP spin-waits on a shared machine.
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.mark.parametrize("head_cls", [LinearHead, LinearConvHead])
def test_probe_heads_shapes_and_channel_check(head_cls):
    head = head_cls(in_channels=2 * 64, num_classes=5)
    maps = [torch.randn(2, 64, 4, 6), torch.randn(2, 64, 4, 6)]
    assert head(maps).shape == (2, 5, 4, 6)
    with pytest.raises(ValueError, match="in_channels"):
        head(maps[:1])


def test_uperhead_shapes():
    head = UPerHead(in_channels=[16] * 4, num_classes=3, channels=8)
    maps = [torch.randn(2, 16, 16 // 2**i, 24 // 2**i) for i in range(4)]
    assert head(maps).shape == (2, 3, 16, 24)


def _segmentor(**kw):
    args = dict(backbone={"name": "PE-Test"}, head={"type": "LinearHead"}, num_classes=4,
                ignore_index=255)
    return Segmentor(**{**args, **kw})


def test_linear_probe_last4_frozen_backbone_trains_only_the_head():
    model = _segmentor(layers=[-4, -3, -2, -1])
    assert model.head.in_channels == 4 * 64
    x = torch.randint(0, 256, (2, 3, 48, 64), dtype=torch.uint8)
    labels = torch.randint(0, 4, (2, 48, 64))
    labels[:, :4] = 255
    losses = model.loss(x, [{"label": lab} for lab in labels])
    losses["loss_ce"].backward()
    assert all(p.grad is None for p in model.backbone.parameters())
    assert model.head.classifier.weight.grad is not None
    model.train()
    assert not model.backbone.training  # frozen backbone stays in eval mode


def test_slide_equals_whole_when_one_window_covers_the_image_and_handles_odd_sizes():
    model = _segmentor().eval()
    x = torch.randn(1, 3, 40, 56)  # not a multiple of 16: padded inside
    whole = model.inference(x)
    model.inference_cfg = {"mode": "slide", "crop_size": (64, 64), "stride": (48, 48)}
    assert torch.allclose(model.inference(x), whole, atol=1e-5)
    model.inference_cfg = {"mode": "slide", "crop_size": (32, 32), "stride": (16, 16)}
    assert model.inference(x).shape == (1, 4, 40, 56)


def test_upernet_on_pyramid_and_test_scale():
    model = _segmentor(head={"type": "UPerHead", "channels": 16},
                       neck={"type": "MultiLayerPyramid", "indices": (0, 1, 2, 3),
                             "out_channels": 16},
                       freeze_backbone=False, test_scale=(96, 32)).eval()
    assert model.head.in_channels == [16] * 4
    out = model.predict_images([np.zeros((50, 70, 3), np.uint8)])
    assert out[0].shape == (50, 70) and out[0].dtype == np.int64


def _uint8(*shape):
    return torch.randint(0, 256, shape, dtype=torch.uint8)


def test_predict_batch_crops_padding_and_returns_labels():
    model = _segmentor().eval()
    samples = [{"image": _uint8(3, 32, 40), "label": torch.zeros(32, 40, dtype=torch.long),
                "path": "a", "ori_size": (32, 40)},
               {"image": _uint8(3, 40, 32), "label": torch.ones(40, 32, dtype=torch.long),
                "path": "b", "ori_size": (40, 32)}]
    batch = seg_collate(samples, ignore_index=255, size_divisor=model.size_divisor)
    assert batch["inputs"].shape == (2, 3, 48, 48) and batch["inputs"].dtype == torch.uint8
    assert (batch["data_samples"][0]["label"][32:] == 255).all()
    preds = model.predict(batch["inputs"], batch["data_samples"])
    assert [tuple(p["pred"].shape) for p in preds] == [(32, 40), (40, 32)]
    assert torch.equal(preds[1]["label"], samples[1]["label"])
    assert preds[0]["path"] == "a"


def test_batches_must_be_padded_to_the_size_divisor():
    model = _segmentor().eval()
    with pytest.raises(ValueError, match="size_divisor=16"):
        model(_uint8(1, 3, 40, 56))
    with pytest.raises(TypeError, match="uint8"):
        model(torch.zeros(1, 3, 48, 64))
    pyramid = _segmentor(head={"type": "UPerHead", "channels": 16},
                         neck={"type": "MultiLayerPyramid", "indices": (0, 1, 2, 3),
                               "out_channels": 16})
    assert pyramid.size_divisor == 32  # the coarsest pyramid stride (p5)


def test_stages_compose_to_forward_and_match_the_float_path():
    """The uint8 path (collate pads once, preprocess zeroes the padding) gives the numbers of
    the former float path (images in [-1, 1] padded with 0, padded again inside the model)."""
    torch.manual_seed(0)
    model = _segmentor(layers=[-2, -1]).eval()
    images = [_uint8(3, 40, 56), _uint8(3, 37, 30)]
    samples = [{"image": im, "label": torch.zeros(im.shape[-2:], dtype=torch.long), "path": "",
                "ori_size": tuple(im.shape[-2:])} for im in images]
    batch = seg_collate(samples, size_divisor=model.size_divisor)
    sizes = [s["size"] for s in batch["data_samples"]]
    old = torch.zeros(2, 3, 40, 56)
    for i, im in enumerate(images):
        old[i, :, : im.shape[1], : im.shape[2]] = im.float() / 127.5 - 1.0
    old = pad_to_multiple(old, 16)
    x = model.preprocess(batch["inputs"], sizes)
    assert torch.equal(x, old)
    with torch.no_grad():
        logits = model(batch["inputs"], sizes)
        assert torch.equal(logits, model.decode(model.encode(x), (48, 64)))
        preds = model.predict(batch["inputs"], batch["data_samples"])
    assert torch.equal(preds[1]["pred"], logits[1, :, :37, :30].argmax(0))


def _write_pair(root, name, size=(40, 30), label_value=1, label_size=None):
    (root / "images").mkdir(exist_ok=True)
    (root / "labels").mkdir(exist_ok=True)
    Image.fromarray(np.zeros((size[1], size[0], 3), np.uint8)).save(root / "images" / f"{name}.png")
    lw, lh = label_size or size
    Image.fromarray(np.full((lh, lw), label_value, np.uint8)).save(root / "labels" / f"{name}.png")


def test_folder_dataset_errors(tmp_path):
    with pytest.raises(FileNotFoundError):
        SegFolderDataset(tmp_path / "nope", num_classes=3)
    (tmp_path / "images").mkdir()
    (tmp_path / "labels").mkdir()
    with pytest.raises(ValueError, match="empty split"):
        SegFolderDataset(tmp_path, num_classes=3)
    _write_pair(tmp_path, "bad_value", label_value=7)
    _write_pair(tmp_path, "bad_size", label_size=(20, 30))
    _write_pair(tmp_path, "ok", label_value=255)
    ds = SegFolderDataset(tmp_path, num_classes=3)
    with pytest.raises(ValueError, match="is 40x30 but its label"):
        ds[0]  # files are sorted: bad_size, bad_value, ok
    with pytest.raises(ValueError, match=r"values \[7\] outside 0..2"):
        ds[1]
    assert (ds[2]["label"] == 255).all()


def test_reduce_zero_label(tmp_path):
    _write_pair(tmp_path, "a", label_value=0)
    _write_pair(tmp_path, "b", label_value=150)
    ds = SegFolderDataset(tmp_path, num_classes=150, reduce_zero_label=True)
    assert (ds[0]["label"] == 255).all() and (ds[1]["label"] == 149).all()


def test_random_crop_cat_max_ratio_and_padding():
    label = np.zeros((20, 20), np.int64)
    label[:, 15:] = 1
    crop = RandomCrop((10, 10), cat_max_ratio=0.75)
    for _ in range(5):
        _, lab = crop(np.zeros((20, 20, 3), np.uint8), label)
        counts = np.bincount(lab.ravel(), minlength=2)
        assert counts.max() / counts.sum() < 0.75 or lab.shape == (10, 10)
    img, lab = RandomCrop((32, 32), ignore_index=9)(np.zeros((20, 20, 3), np.uint8), label)
    assert img.shape == (32, 32, 3) and (lab[20:] == 9).all()


def test_camvid_real_data_and_train_pipeline():
    root = data_dir("camvid_val")
    ds = SegFolderDataset(root, num_classes=11, ignore_index=11, classes=CAMVID_CLASSES,
                          transforms=build_seg_transforms(train=True, crop_size=(128, 160),
                                                          scale=(480, 360), ignore_index=11))
    assert len(ds) >= 30
    sample = ds[0]
    assert sample["image"].shape == (3, 128, 160) and sample["label"].shape == (128, 160)
    assert sample["image"].dtype == torch.uint8  # the model normalises, not the data
    image, label = ds.load(0)
    assert image.shape == (360, 480, 3) and set(np.unique(label)) <= set(range(12))
    assert SegFolderDataset(root, num_classes=11, ignore_index=11, subset=(20, None)).__len__() \
        == len(ds) - 20


def test_backbone_instance_is_accepted():
    vit = create_backbone("PE-Test")
    model = Segmentor(backbone=vit, head=LinearHead(in_channels=64, num_classes=2),
                      num_classes=2)
    assert model.backbone is vit


def test_ade20k_layout(tmp_path):
    from pe_dense.data.segmentation import ADE20K_CLASSES, ADE20KDataset

    root = tmp_path / "ADEChallengeData2016"
    for split in ("training", "validation"):
        (root / "images" / split).mkdir(parents=True)
        (root / "annotations" / split).mkdir(parents=True)
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(
        root / "images" / "validation" / "ADE_val_00000001.jpg")
    label = np.array([[0, 1], [150, 2]], np.uint8).repeat(4, 0).repeat(4, 1)
    Image.fromarray(label).save(root / "annotations" / "validation" / "ADE_val_00000001.png")
    ds = ADE20KDataset(root, split="validation")
    assert len(ADE20K_CLASSES) == 150 and ds.classes[0] == "wall"
    assert ds[0]["label"][::4, ::4].tolist() == [[255, 0], [149, 1]]
    with pytest.raises(ValueError, match="empty split"):
        ADE20KDataset(root, split="training")
    with pytest.raises(ValueError, match="split="):
        ADE20KDataset(root, split="val")


def test_one_name_for_the_blocks_with_the_old_spellings_accepted():
    from pe_dense.necks.pyramid import SimpleFeaturePyramid

    new, old = _segmentor(indices=[-2, -1]), _segmentor(layers=[-2, -1])
    assert new.features.indices == old.features.indices == [2, 3]
    with pytest.raises(ValueError, match=r"give the blocks once, as indices= \(got indices, "
                                         r"layers\)"):
        _segmentor(indices=[-1], layers=[-1])
    sfp = SimpleFeaturePyramid({"name": "PE-Test"}, in_index=2, out_channels=8)
    same = SimpleFeaturePyramid({"name": "PE-Test"}, indices=2, out_channels=8)
    assert sfp.indices == same.indices == [2]
