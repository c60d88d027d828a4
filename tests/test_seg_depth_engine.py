"""The shipped seg/depth configs load, and train -> resume -> test runs through the engine
(with the configs' model shrunk to PE-Test and synthetic data, so it takes seconds)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

mmengine = pytest.importorskip("mmengine")
from mmengine.config import Config  # noqa: E402

from pe_dense.engine import build_runner, load_config  # noqa: E402
from pe_dense.engine import test as run_test  # noqa: E402
from pe_dense.engine.predictor import Predictor  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SEG_CONFIGS = sorted((ROOT / "configs" / "seg").glob("*.py"))
DEPTH_CONFIGS = sorted((ROOT / "configs" / "depth").glob("*.py"))


@pytest.fixture(autouse=True)
def _one_thread():
    # Tiny models: one thread is fastest, and immune to OpenMP spin-waits on a shared machine.
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.mark.parametrize("path", SEG_CONFIGS + DEPTH_CONFIGS, ids=lambda p: p.name)
def test_configs_load_and_name_registered_types(path):
    cfg = load_config(path)
    assert cfg.model.type in ("Segmentor", "DepthEstimator")
    assert cfg.val_evaluator.type in ("SegIoUMetric", "DepthMetric")
    assert cfg.train_cfg.max_iters > 0 and "custom_imports" not in cfg
    # The size divisor is stated once and reaches every collate.
    divisors = {loader.collate_fn.size_divisor for loader in
                (cfg.train_dataloader, cfg.val_dataloader, cfg.test_dataloader)}
    assert divisors == {cfg.size_divisor}
    if "neck" in cfg.model:
        assert cfg.size_divisor == 32  # the pyramid's coarsest stride
    else:
        assert cfg.size_divisor == (14 if "14" in path.name else 16)


def test_engine_models_are_the_library_models_with_the_same_keys():
    from pe_dense.engine.registry import MODELS
    from pe_dense.tasks.depth.model import DepthEstimator
    from pe_dense.tasks.segmentation.model import Segmentor

    spec = dict(backbone={"name": "PE-Test"}, head={"type": "LinearHead"}, num_classes=3)
    with MODELS.switch_scope_and_registry("pe_dense") as models:
        seg = models.build(dict(type="Segmentor", **spec))
        depth = models.build(dict(type="DepthEstimator", backbone={"name": "PE-Test"},
                                  head={"type": "LinearBinsHead"}))
    assert isinstance(seg, Segmentor) and isinstance(seg, mmengine.model.BaseModel)
    assert isinstance(depth, DepthEstimator)
    assert list(seg.state_dict()) == list(Segmentor(**spec).state_dict())
    x = torch.zeros(1, 3, 32, 48, dtype=torch.uint8)
    losses = seg(x, [{"label": torch.zeros(32, 48, dtype=torch.long)}], mode="loss")
    assert set(losses) == {"loss_ce", "acc_seg"}


def test_seg_metric_wraps_the_evaluator():
    from pe_dense.engine.tasks.segmentation import SegIoUMetric
    from pe_dense.evaluation.segmentation import SegmentationEvaluator

    rng = torch.Generator().manual_seed(0)
    pairs = [(torch.randint(0, 3, (8, 8), generator=rng), torch.randint(0, 4, (8, 8),
                                                                        generator=rng))
             for _ in range(3)]
    metric = SegIoUMetric(num_classes=3, ignore_index=3)
    evaluator = SegmentationEvaluator(num_classes=3, ignore_index=3)
    for pred, label in pairs:
        metric.process({}, [{"pred": pred, "label": label}])
        evaluator.update(pred, label)
    out = metric.compute_metrics(metric.results)
    ref = evaluator.compute()
    assert out == {k: round(ref[k], 2) for k in ("aAcc", "mIoU", "mAcc")}
    with pytest.raises(ValueError, match="ground-truth labels"):
        metric.process({}, [{"pred": pairs[0][0]}])


def test_depth_metric_skips_images_without_ground_truth():
    from pe_dense.engine.tasks.depth import DepthMetric

    metric = DepthMetric(eigen_crop=False)
    metric.process({}, [
        {"pred_depth": torch.full((4, 4), 2.0), "gt_depth": torch.full((8, 8), 2.0)},
        {"pred_depth": torch.ones(4, 4), "gt_depth": torch.zeros(4, 4)}])
    out = metric.compute_metrics(metric.results)
    assert out["abs_rel"] == 0.0 and out["d1"] == 1.0 and out["skipped"] == 1
    assert "num_images" not in out


def _camvid_like(root: Path, n: int = 4) -> Path:
    rng = np.random.default_rng(0)
    (root / "images").mkdir(parents=True)
    (root / "labels").mkdir()
    for i in range(n):
        label = np.zeros((48, 64), np.uint8)
        label[24:] = 1
        label[:, :8] = 11  # void
        image = np.where(label[..., None] == 1, 200, 40).astype(np.uint8).repeat(3, -1)
        image = (image + rng.integers(0, 20, image.shape)).astype(np.uint8)
        Image.fromarray(image).save(root / "images" / f"f{i}.png")
        Image.fromarray(label).save(root / "labels" / f"f{i}.png")
    return root


def _shrink(cfg: Config, work_dir: Path, max_iters: int) -> Config:
    cfg.work_dir = str(work_dir)
    cfg.model.backbone = dict(name="PE-Test", weights=None)
    cfg.train_cfg.max_iters = max_iters
    cfg.train_cfg.val_interval = max_iters
    cfg.param_scheduler = [dict(type="ConstantLR", factor=1.0, by_epoch=False)]
    cfg.default_hooks.checkpoint.interval = 2
    cfg.default_hooks.logger.interval = 1
    return cfg


def test_seg_train_resume_test(tmp_path):
    data = _camvid_like(tmp_path / "data")
    cfg = load_config(ROOT / "configs/seg/upernet_pe-spatial-t16_camvid_cpu.py")
    cfg = _shrink(cfg, tmp_path / "wd", 2)
    cfg.model.neck = dict(type="MultiLayerPyramid", indices=(0, 1, 2, 3), out_channels=16)
    cfg.model.head = dict(type="UPerHead", channels=16)
    for loader in (cfg.train_dataloader, cfg.val_dataloader, cfg.test_dataloader):
        loader.dataset.root = str(data)
        loader.dataset.subset = None
        loader.batch_size = 2
    cfg.train_dataloader.dataset.transforms = dict(train=True, crop_size=(32, 32),
                                                   scale=(64, 48), ratio_range=(0.8, 1.2))
    runner = build_runner(cfg)
    runner.train()
    ckpt = tmp_path / "wd" / "iter_2.pth"
    assert ckpt.is_file()
    cfg.train_cfg.max_iters = 3
    resumed = build_runner(cfg, resume=True)
    resumed.train()
    assert resumed.iter == 3  # continued from iteration 2
    metrics = run_test(cfg, ckpt)
    assert set(metrics) >= {"mIoU", "mAcc", "aAcc"} and 0 <= metrics["mIoU"] <= 100
    saved = json.loads((tmp_path / "wd" / "metrics.json").read_text())
    assert saved["metrics"]["mIoU"] == metrics["mIoU"]

    predictor = Predictor(cfg, ckpt, device="cpu")
    image = data / "images" / "f0.png"
    labels = predictor(image)
    assert labels.shape == (48, 64) and predictor.class_names[0] == "sky"
    drawn = predictor.draw(image, labels)
    assert drawn.shape[0] == 48 and drawn.shape[1] > 64  # overlay + legend


def test_depth_train_and_test(tmp_path):
    data = tmp_path / "nyu"
    data.mkdir()
    for i in range(2):
        Image.fromarray(np.full((48, 64, 3), 90 + 50 * i, np.uint8)).save(data / f"image_{i}.png")
        Image.fromarray(np.full((48, 64), 1500 + 1000 * i, np.uint16)).save(data / f"depth_{i}.png")
    cfg = load_config(ROOT / "configs/depth/dpt_pe-spatial-t16_nyu-mini_cpu.py")
    cfg = _shrink(cfg, tmp_path / "wd", 2)
    cfg.model.head = dict(type="DPTHead", features=16, out_channels=(8, 16, 32, 32))
    cfg.model.input_scale = 1.0
    for loader in (cfg.train_dataloader, cfg.val_dataloader, cfg.test_dataloader):
        loader.dataset.root = str(data)
        loader.batch_size = 2
    cfg.train_dataloader.dataset.transforms = dict(train=True, border_crop=False,
                                                   crop_size=(32, 48))
    cfg.val_evaluator.eigen_crop = cfg.test_evaluator.eigen_crop = False
    build_runner(cfg).train()
    metrics = run_test(cfg, tmp_path / "wd" / "iter_2.pth")
    assert set(metrics) >= {"abs_rel", "rmse", "d1", "silog"} and metrics["skipped"] == 0

    predictor = Predictor(cfg, tmp_path / "wd" / "iter_2.pth", device="cpu")
    depth = predictor(data / "image_0.png")
    assert depth.shape == (48, 64) and (depth > 0).all() and (depth <= 10).all()
    assert predictor.draw(data / "image_0.png", depth).shape[1] > 2 * 64  # + colour bar


@pytest.mark.parametrize("name", ["seg/linear_pe-spatial-t16_ade20k-512.py",
                                  "seg/upernet_pe-spatial-t16_ade20k-512.py",
                                  "depth/dpt_pe-spatial-t16_nyu.py",
                                  "depth/linear_pe-spatial-t16_nyu.py"])
def test_t16_models_build_and_run_from_configs(name):
    from pe_dense.engine.registry import MODELS

    cfg = load_config(ROOT / "configs" / name)
    cfg.model.backbone.weights = None  # no hub here
    with MODELS.switch_scope_and_registry("pe_dense") as models:
        model = models.build(cfg.model).eval()
    with torch.no_grad():
        out = model(torch.zeros(1, 3, 64, 96, dtype=torch.uint8), mode="tensor")
    assert out.shape[-2:] == (64, 96)
    assert out.shape[1] == (150 if model.task == "segmentation" else 1)
