"""Depth heads, the DepthEstimator (uint8 input contract), NYU datasets and bad-input handling.
Plain PyTorch: no mmengine needed."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import data_dir
from PIL import Image

from pe_dense.data.depth import DepthTransform, NYUFolderDataset, NYUSplitDataset, depth_collate
from pe_dense.tasks.common import pad_to_multiple
from pe_dense.tasks.depth.heads import DPTHead, LinearBinsHead, dpt_config
from pe_dense.tasks.depth.model import DepthEstimator


@pytest.fixture(autouse=True)
def _one_thread():
    # Tiny models: one thread is fastest, and immune to OpenMP spin-waits on a shared machine.
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.mark.parametrize("readout", ["ignore", "project", "add"])
def test_dpt_head_shape_and_depth_range(readout):
    head = DPTHead(embed_dim=32, features=16, out_channels=(8, 16, 32, 32), readout=readout,
                   min_depth=0.5, max_depth=4.0)
    maps = [torch.randn(2, 32, 3, 5) for _ in range(4)]
    out = head(maps, image_size=(48, 80))
    assert out.shape == (2, 1, 48, 80)
    assert out.min() >= 0.5 and out.max() <= 4.0


def test_linear_bins_head_is_a_convex_combination_of_bins():
    head = LinearBinsHead(in_channels=2 * 16, n_bins=8, min_depth=1.0, max_depth=3.0,
                          readout=True)
    out = head([torch.randn(2, 16, 4, 4)], image_size=(32, 32))
    assert out.shape == (2, 1, 32, 32) and out.min() >= 1.0 and out.max() <= 3.0
    with pytest.raises(ValueError, match="built for 32 channels"):
        head([torch.randn(2, 16, 4, 4)] * 2, image_size=(32, 32))


def test_dpt_widths_and_layers_per_variant():
    assert dpt_config("PE-Spatial-B16-512", 12) == {
        "features": 128, "out_channels": (96, 192, 384, 768), "layers": (2, 5, 8, 11)}
    assert dpt_config("PE-Spatial-L14-448", 24)["layers"] == (4, 11, 17, 23)
    assert dpt_config("PE-Spatial-G14-448", 50)["features"] == 384
    assert dpt_config("PE-Test", 4)["layers"] == (0, 1, 2, 3)
    assert dpt_config("timm/vit_base_patch16_dinov3", 12, 768)["features"] == 128  # ViT-B
    assert dpt_config("timm/vit_large_patch16_dinov3", 24, 1024)["out_channels"][0] == 256


def _uint8(*shape):
    return torch.randint(0, 256, shape, dtype=torch.uint8)


def test_estimator_loss_predict_and_padding():
    head = {"type": "DPTHead", "features": 16, "out_channels": (8, 16, 32, 32)}
    model = DepthEstimator(backbone={"name": "PE-Test"}, head=head, min_depth=1e-3,
                           max_depth=10.0, flip_test=True)
    assert model.features.layers == [0, 1, 2, 3]
    target = torch.rand(2, 1, 40, 56) * 4 + 0.5
    target[0, 0, :5] = 0.0  # invalid pixels are ignored
    samples = [{"image": _uint8(3, 40, 56), "depth": t, "path": str(i)}
               for i, t in enumerate(target)]
    batch = depth_collate(samples, size_divisor=model.size_divisor)  # 40x56 -> 48x64, once
    assert batch["inputs"].shape == (2, 3, 48, 64) and batch["inputs"].dtype == torch.uint8
    assert batch["data_samples"][0]["depth"].shape == (1, 48, 64)
    losses = model.loss(batch["inputs"], batch["data_samples"])
    losses["loss_silog"].backward()
    assert all(p.grad is None for p in model.backbone.parameters())  # frozen by default
    model.eval()
    preds = model.predict(batch["inputs"], batch["data_samples"])
    assert preds[0]["pred_depth"].shape == (40, 56) == preds[0]["gt_depth"].shape
    assert preds[1]["path"] == "1"
    out = model.predict_images([np.zeros((30, 50, 3), np.uint8)])
    assert out[0].shape == (30, 50) and out[0].dtype == np.float32
    with pytest.raises(ValueError, match="size_divisor=16"):
        model(_uint8(1, 3, 40, 56))


def test_uint8_path_matches_the_float_path():
    """Collate padding + preprocess give the former float input (padding 0 after
    normalisation), and predict equals the stages run on it, cropped per image."""
    torch.manual_seed(0)
    model = DepthEstimator(backbone={"name": "PE-Test"}, head={"type": "LinearBinsHead"}).eval()
    images = [_uint8(3, 40, 56), _uint8(3, 33, 20)]
    samples = [{"image": im, "depth": torch.ones(1, *im.shape[-2:]), "path": ""} for im in images]
    batch = depth_collate(samples, size_divisor=16)
    old = torch.zeros(2, 3, 40, 56)
    for i, im in enumerate(images):
        old[i, :, : im.shape[1], : im.shape[2]] = im.float() / 127.5 - 1.0
    x = model.preprocess(batch["inputs"], [s["size"] for s in batch["data_samples"]])
    assert torch.equal(x, pad_to_multiple(old, 16))
    with torch.no_grad():
        depth = model.decode(model.encode(x), (48, 64))
        preds = model.predict(batch["inputs"], batch["data_samples"])
    assert torch.equal(preds[1]["pred_depth"], depth[1, 0, :33, :20])


def test_linear_estimator_and_input_scale():
    model = DepthEstimator(backbone={"name": "PE-Test"},
                           head={"type": "LinearBinsHead", "readout": True},
                           layers=[-2, -1], input_scale=0.5).eval()
    assert model.head.in_channels == 2 * 2 * 64
    assert model.inference(torch.randn(1, 3, 64, 96)).shape == (1, 1, 64, 96)
    (pred,) = model.predict(_uint8(1, 3, 64, 96), [{"size": (60, 90)}])
    assert pred["pred_depth"].shape == (60, 90)


def test_gradient_loss_option_and_unknown_loss_keys():
    model = DepthEstimator(backbone={"name": "PE-Test"}, head={"type": "LinearBinsHead"},
                           loss={"gradient_weight": 0.5})
    target = torch.rand(1, 1, 32, 48) * 3 + 1
    losses = model.loss(_uint8(1, 3, 32, 48), [{"depth": target[0]}])
    assert set(losses) == {"loss_silog", "loss_grad"} and losses["loss_grad"] > 0
    with pytest.raises(ValueError, match="unknown loss options"):
        DepthEstimator(backbone={"name": "PE-Test"}, head={"type": "LinearBinsHead"},
                       loss={"lambda": 1})


def _write_nyu(folder, name, depth_mm, size=(64, 48)):
    Image.fromarray(np.zeros((size[1], size[0], 3), np.uint8)).save(folder / f"image_{name}.png")
    Image.fromarray(depth_mm.astype(np.uint16)).save(folder / f"depth_{name}.png")


def test_nyu_folder_errors_and_counts(tmp_path):
    with pytest.raises(ValueError, match="empty split"):
        NYUFolderDataset(tmp_path)
    _write_nyu(tmp_path, "0", np.full((48, 64), 2500))
    _write_nyu(tmp_path, "1", np.zeros((48, 64)))
    _write_nyu(tmp_path, "2", np.full((40, 64), 2500))
    ds = NYUFolderDataset(tmp_path)
    assert ds[0]["depth"].shape == (1, 48, 64) and float(ds[0]["depth"].max()) == 2.5
    ds[1]
    assert ds.empty_maps == 1 and ds.invalid_pixels == 48 * 64
    with pytest.raises(ValueError, match="is 64x48 but depth"):
        ds[2]


def test_split_file_layout(tmp_path):
    scene = tmp_path / "sync" / "kitchen_0001"
    scene.mkdir(parents=True)
    Image.fromarray(np.zeros((48, 64, 3), np.uint8)).save(scene / "rgb_00001.jpg")
    Image.fromarray(np.full((48, 64), 1234, np.uint16)).save(scene / "sync_depth_00001.png")
    split = tmp_path / "train.txt"
    split.write_text("/kitchen_0001/rgb_00001.jpg /kitchen_0001/sync_depth_00001.png 518.8579\n"
                     "/kitchen_0001/rgb_00002.jpg /kitchen_0001/sync_depth_00002.png 518.8579\n")
    ds = NYUSplitDataset(tmp_path / "sync", split)
    assert len(ds) == 1 and float(ds[0]["depth"][0, 0, 0]) == pytest.approx(1.234)
    with pytest.raises(FileNotFoundError):
        NYUSplitDataset(tmp_path, tmp_path / "missing.txt")


def test_nyu_mini_real_frames_and_train_transform():
    ds = NYUFolderDataset(data_dir("nyu_mini"),
                          transforms=DepthTransform(train=True, crop_size=(416, 544)))
    assert len(ds) >= 10
    image, depth = NYUFolderDataset(data_dir("nyu_mini")).load(0)
    assert image.shape == (480, 640, 3) and depth.dtype == np.float32
    assert 0.5 < depth[depth > 0].min() and depth.max() <= 10.0  # millimetres -> metres
    sample = ds[0]
    assert sample["image"].shape == (3, 416, 544) and sample["depth"].shape == (1, 416, 544)
    assert sample["image"].dtype == torch.uint8  # the model normalises, not the data
