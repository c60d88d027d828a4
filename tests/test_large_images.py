"""Large images: the tile / window grid, sliced detection (coordinates, merging across tile
borders, the MaskRCNN contract) and sliding-window dense inference (equal to whole-image
inference where it must be, bounded memory). Plain PyTorch, tiny stubs and PE-Test models."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from conftest import ROOT
from torch import nn

from pe_dense.backbone.inputs import normalize
from pe_dense.data.images import to_tensor
from pe_dense.tasks.common import DenseModel, overlap_stride, slide_predict, window_grid
from pe_dense.tasks.depth.model import DepthEstimator
from pe_dense.tasks.detection.sliced import expand_masks, sliced_predict, tile_windows
from pe_dense.tasks.segmentation.model import Segmentor


@pytest.fixture(autouse=True)
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


# ---------------------------------------------------------------------------------- the grid

@pytest.mark.parametrize("size", [(1000, 700), (256, 256), (100, 300), (257, 513), (3000, 4000)])
def test_tiles_cover_every_pixel_and_overlap_by_the_fraction(size):
    h, w = size
    tiles = tile_windows(size, 256, 0.2)
    stride = overlap_stride(256, 0.2)
    assert stride == 205
    cover = np.zeros(size, np.int32)
    for x0, y0, x1, y1 in tiles:
        assert 0 <= x0 < x1 <= w and 0 <= y0 < y1 <= h
        assert (x1 - x0, y1 - y0) == (min(256, w), min(256, h))
        cover[y0:y1, x0:x1] += 1
    assert cover.min() >= 1
    for bands, n in (({(t[0], t[2]) for t in tiles}, w), ({(t[1], t[3]) for t in tiles}, h)):
        bands = sorted(bands)
        assert bands[0][0] == 0 and bands[-1][1] == n  # the last band shifted inward
        for (_, end), (start, _) in zip(bands[:-1], bands[1:], strict=True):
            assert end - start >= 256 - stride  # neighbours share at least the overlap
    # mmseg's grid: 512 crops, stride 341 (overlap 1/3)
    assert overlap_stride(512, 1 / 3) == 341
    assert window_grid((700, 512), (512, 512), (341, 341)) == [(0, 0, 512, 512),
                                                             (0, 188, 512, 700)]


def test_grid_rejects_bad_arguments():
    with pytest.raises(ValueError, match="overlap"):
        overlap_stride(256, 1.0)
    with pytest.raises(ValueError, match="positive"):
        tile_windows((100, 100), 0)


# ------------------------------------------------------------------------- sliced detection

BOX = (10.0, 20.0, 30.0, 45.0)  # every tile's one detection, tile pixels


def _fixed_box_detect(calls):
    def detect(images):
        calls.append([im.shape for im in images])
        out = []
        for im in images:
            masks = np.zeros((1, *im.shape[:2]), bool)
            masks[0, 20:45, 10:30] = True
            out.append({"boxes": torch.tensor([BOX]), "scores": torch.tensor([0.9]),
                        "labels": torch.tensor([0]), "masks": torch.from_numpy(masks)})
        return out
    return detect


def test_tile_detections_come_back_in_image_pixels():
    calls = []
    image = np.zeros((300, 500, 3), np.uint8)
    out = sliced_predict(_fixed_box_detect(calls), image, slice_size=128, overlap=0.25,
                         whole=False, batch_size=4, max_detections=1000)
    tiles = tile_windows((300, 500), 128, 0.25)
    assert sum(map(len, calls)) == len(tiles) == 15 and max(map(len, calls)) == 4
    assert all(s == (128, 128, 3) for c in calls for s in c)
    expected = sorted((x0 + BOX[0], y0 + BOX[1], x0 + BOX[2], y0 + BOX[3])
                      for x0, y0, _, _ in tiles)
    assert sorted(map(tuple, out["boxes"].tolist())) == expected
    assert out["masks"].shape == (len(tiles), 300, 500) and out["masks"].dtype == bool
    for box, mask in zip(out["boxes"], out["masks"], strict=True):
        x0, y0, x1, y1 = box.astype(int)
        assert mask.sum() == (x1 - x0) * (y1 - y0) and mask[y0:y1, x0:x1].all()
    assert out["labels"].dtype == np.int64 and out["scores"].dtype == np.float32
    assert np.all(np.diff(out["scores"]) <= 0)


def test_whole_image_pass_is_scaled_back_from_whole_size():
    seen = []

    def detect(images):
        seen.append(images[0].shape)
        h, w = images[0].shape[:2]
        if (h, w) == (128, 128):  # tiles: nothing
            return [{"boxes": np.zeros((0, 4)), "scores": np.zeros(0), "labels": np.zeros(0),
                     "masks": np.zeros((0, h, w), bool)} for _ in images]
        mask = np.zeros((1, h, w), bool)
        mask[0, 10:20, 30:50] = True
        return [{"boxes": np.array([[30.0, 10.0, 50.0, 20.0]]), "scores": np.array([0.8]),
                 "labels": np.array([1]), "masks": mask}]

    out = sliced_predict(detect, np.zeros((400, 800, 3), np.uint8), 128, whole_size=200)
    assert seen[-1] == (100, 200, 3)  # the whole image shrunk to 200 on its long side
    np.testing.assert_allclose(out["boxes"], [[120.0, 40.0, 200.0, 80.0]])
    assert out["labels"].tolist() == [1]
    mask = out["masks"][0]
    assert mask[40:80, 120:200].all() and mask.sum() == 40 * 80


def _white_blob_detect(label_of=lambda image: 0):
    """A fake detector that 'sees' the white pixels of its input as one object."""
    def detect(images):
        out = []
        for im in images:
            m = (im == 255).all(-1)
            if not m.any():
                out.append({"boxes": torch.zeros(0, 4), "scores": torch.zeros(0),
                            "labels": torch.zeros(0, dtype=torch.int64),
                            "masks": torch.zeros(0, *m.shape, dtype=torch.bool)})
                continue
            ys, xs = np.nonzero(m)
            box = [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]
            out.append({"boxes": torch.tensor([box], dtype=torch.float32),
                        "scores": torch.tensor([0.5 + 0.1 * (im.shape[1] == 448)]),
                        "labels": torch.tensor([label_of(im)]),
                        "masks": torch.from_numpy(m)[None]})
        return out
    return detect


def _cut_object_image():
    """448 x 256 with one object (a disc-ish blob) across the border of the two 256 tiles."""
    image = np.full((256, 448, 3), 40, np.uint8)
    yy, xx = np.mgrid[:256, :448]
    obj = ((xx - 225) / 75.0) ** 2 + ((yy - 125) / 25.0) ** 2 <= 1.0
    image[obj] = 255
    return image, obj


@pytest.mark.parametrize("options", [
    dict(whole=False, match="ios"),                  # two fragments merged by IoS
    dict(whole=True, match="iou", drop_cut=True),    # fragments dropped, the whole view kept
    dict(whole=True, match="iou", drop_cut=False),   # fragments merged into the whole view
])
def test_a_box_cut_by_a_tile_border_becomes_one_detection_with_the_union_mask(options):
    image, obj = _cut_object_image()
    tiles = tile_windows(image.shape[:2], 256, 0.25)
    assert tiles == [(0, 0, 256, 256), (192, 0, 448, 256)]  # the object spans x 150..300
    out = sliced_predict(_white_blob_detect(), image, 256, overlap=0.25, **options)
    ys, xs = np.nonzero(obj)
    assert out["boxes"].tolist() == [[xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]]
    assert np.array_equal(out["masks"][0], obj)


def test_a_fragment_is_dropped_when_the_next_tile_saw_the_object_up_to_its_own_border():
    image = np.full((256, 448, 3), 40, np.uint8)
    image[100:150, 193:340] = 255  # starts 1 px inside tile 1 (x 192..448): both boxes cut
    out = sliced_predict(_white_blob_detect(), image, 256, overlap=0.25, whole=False)
    assert out["boxes"].tolist() == [[193, 100, 340, 150]]
    # without the drop, the fragment (193..256, IoU 0.43 with the whole view) stays
    out = sliced_predict(_white_blob_detect(), image, 256, overlap=0.25, whole=False,
                         drop_cut=False)
    assert sorted(out["boxes"].tolist()) == [[193, 100, 256, 150], [193, 100, 340, 150]]


def test_fragments_stay_apart_without_a_match_or_across_classes():
    image, obj = _cut_object_image()
    # IoU of the two fragments is below 0.5 and no whole view: two detections
    out = sliced_predict(_white_blob_detect(), image, 256, overlap=0.25, whole=False)
    assert len(out["boxes"]) == 2
    assert np.array_equal(out["masks"].any(0), obj)
    # IoS matches, but the tiles call the object different classes: never merged
    label_of = lambda im: int(im[125, 0, 0] == 255)  # noqa: E731  (tile 1 starts inside)
    out = sliced_predict(_white_blob_detect(label_of), image, 256, overlap=0.25, whole=False,
                         match="ios")
    assert sorted(out["labels"].tolist()) == [0, 1]


def test_sliced_predict_with_a_mask_rcnn_returns_its_format():
    from pe_dense.tasks.detection.model import MaskRCNN

    torch.manual_seed(0)
    model = MaskRCNN(backbone={"name": "PE-Test"}, num_classes=2,
                     pyramid={"out_channels": 16}, box_head={"conv_dims": (16,), "fc_dims": (32,)},
                     mask_head={"conv_dims": (16,)},
                     roi={"score_thresh": 0.0, "detections_per_img": 20}).eval()
    image = np.random.default_rng(0).integers(0, 256, (150, 260, 3), dtype=np.uint8)
    out = sliced_predict(model.predict_images, image, 128, max_detections=30, whole_size=128)
    k = len(out["boxes"])
    assert 0 < k <= 30 and out["boxes"].shape == (k, 4) and out["masks"].shape == (k, 150, 260)
    assert out["labels"].min() >= 0 and out["labels"].max() < 2
    assert (out["boxes"][:, 2] <= 260).all() and (out["boxes"][:, 3] <= 150).all()
    crops = sliced_predict(model.predict_images, image, 128, max_detections=30,
                           whole_size=128, mask_format="crops")
    assert np.array_equal(expand_masks(crops["mask_crops"], (150, 260)), out["masks"])


# --------------------------------------------------------------------- sliding-window dense

class PixelModel(DenseModel):
    """A per-pixel (1x1 conv) dense model: the same output for a pixel in any window."""

    size_divisor = 1

    def __init__(self, channels: int = 3) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(3, channels, 1)
        self.backbone = SimpleNamespace(normalize=normalize)  # PE's input statistics
        self.inputs: list[tuple[int, ...]] = []

    def encode(self, x):
        self.inputs.append(tuple(x.shape))
        return self.conv(x)

    def decode(self, features, image_size):
        return features


def _image(h, w, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def test_slide_predict_of_a_per_pixel_model_equals_whole_image_for_any_crop():
    model = PixelModel()
    image = _image(50, 70)
    whole = model.run_padded(normalize(to_tensor(image)[None]))
    for crop, overlap, batch in [(16, 0.3, 4), (7, 0.0, 1), (33, 0.5, 3), (100, 0.2, 2)]:
        model.inputs.clear()
        out = slide_predict(model, image, crop, overlap, batch_size=batch)
        assert out.shape == (1, 3, 50, 70)
        torch.testing.assert_close(out, whole, rtol=0, atol=1e-6)
        assert all(s[0] <= batch and s[2:] == (min(crop, 50), min(crop, 70))
                   for s in model.inputs)
    # the models' own slide mode gives the same
    model.inference_cfg = {"mode": "slide", "crop_size": (16, 24), "stride": (10, 20),
                           "batch_size": 3}
    x = normalize(to_tensor(image)[None])
    torch.testing.assert_close(model.slide(x), whole, rtol=0, atol=1e-6)


@pytest.mark.parametrize("kind", ["segmentation", "depth"])
def test_slide_predict_equals_whole_image_when_the_crop_covers_it(kind):
    torch.manual_seed(0)
    if kind == "segmentation":
        model = Segmentor(backbone={"name": "PE-Test"}, head={"type": "LinearHead"},
                          num_classes=4)
    else:
        model = DepthEstimator(backbone={"name": "PE-Test"}, head={"type": "LinearBinsHead"})
    model.eval()
    image = _image(40, 56)  # not a multiple of the patch: padded inside, as predict does
    x = model.backbone.normalize(to_tensor(image)[None])
    whole = model.run_padded(x)
    torch.testing.assert_close(slide_predict(model, image, crop=64), whole, rtol=0, atol=0)
    # smaller crops: the model's own slide mode and slide_predict agree
    model.inference_cfg = {"mode": "slide", "crop_size": (32, 32), "stride": (21, 21)}
    torch.testing.assert_close(slide_predict(model, image, crop=32, overlap=1 / 3),
                               model.inference(x), rtol=1e-5, atol=1e-5)


def test_depth_slide_mode_and_flip_per_window():
    torch.manual_seed(0)
    model = DepthEstimator(backbone={"name": "PE-Test"}, head={"type": "LinearBinsHead"},
                           flip_test=True, inference={"mode": "slide", "crop_size": (32, 32),
                                                      "stride": (16, 16)}).eval()
    assert model.per_image_inference
    x = torch.randn(1, 3, 48, 64)
    out = model.inference(x)
    assert out.shape == (1, 1, 48, 64) and (out > 0).all()
    with pytest.raises(ValueError, match="unknown inference option"):
        DepthEstimator(backbone={"name": "PE-Test"}, head={"type": "LinearBinsHead"},
                       inference={"mode": "slide", "crop": 32})


def test_slide_predict_memory_is_one_accumulator():
    """A 3000 x 4000 image through a 1-channel per-pixel model: the peak grows by about the
    (1, H, W) float accumulator (48 MB) and a few windows, far below the 144 MB of the image
    as float."""
    code = textwrap.dedent("""
        import resource, sys, numpy as np, torch
        sys.path.insert(0, "tests")
        from test_large_images import PixelModel
        from pe_dense.tasks.common import slide_predict
        torch.set_num_threads(1)
        model = PixelModel(channels=1)
        image = np.full((3000, 4000, 3), 7, np.uint8)
        slide_predict(model, image[:64, :64].copy(), 32)  # warm up the allocator and kernels
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        out = slide_predict(model, image, 512, batch_size=2)
        after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        assert out.shape == (1, 1, 3000, 4000)
        print((after - before) / 1024)
    """)
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={"OMP_NUM_THREADS": "1", "PATH": ""}, cwd=ROOT, check=False)
    assert run.returncode == 0, run.stderr
    growth_mb = float(run.stdout.strip().splitlines()[-1])
    assert growth_mb < 100, f"peak grew by {growth_mb:.0f} MB"
