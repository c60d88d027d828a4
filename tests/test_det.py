"""Detection stack: transforms, COCO dataset (and its bad input), collate, Mask R-CNN, CocoMetric,
configs, and short end-to-end runs on synthetic shapes."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from pe_dense.data.coco import CocoDetection
from pe_dense.data.collate import detection_collate, pad_images
from pe_dense.data.det_transforms import (
    LargeScaleJitter,
    PackDetInputs,
    RandomFlip,
    ResizeLongestSide,
)
from pe_dense.engine.runner import MOVED_IMPORTS, load_config
from pe_dense.engine.tasks.detection import CocoMetric, configure_inputs
from pe_dense.engine.tasks.detection import MaskRCNN as EngineMaskRCNN
from pe_dense.tasks.detection.model import DetInputs, MaskRCNN

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "configs/det/mask_rcnn_pe_test_shapes_tiny.py"


def tiny_options(shapes: Path) -> list[str]:
    ann = shapes / "annotations"
    return [f"train_dataloader.dataset.ann_file={ann}/instances_train.json",
            f"train_dataloader.dataset.img_dir={shapes}/train",
            f"val_dataloader.dataset.ann_file={ann}/instances_val.json",
            f"val_dataloader.dataset.img_dir={shapes}/val",
            f"test_dataloader.dataset.ann_file={ann}/instances_val.json",
            f"test_dataloader.dataset.img_dir={shapes}/val",
            f"val_evaluator.ann_file={ann}/instances_val.json",
            f"test_evaluator.ann_file={ann}/instances_val.json"]


def _results(h=60, w=80):
    masks = np.zeros((2, h, w), np.uint8)
    masks[0, 10:30, 5:25] = 1
    masks[1, 40:58, 50:78] = 1
    return {"image": np.random.randint(0, 255, (h, w, 3), np.uint8),
            "boxes": np.array([[5, 10, 25, 30], [50, 40, 78, 58]], np.float32),
            "labels": np.array([0, 1]), "masks": masks, "ori_size": (h, w)}


def _mask_boxes(masks: np.ndarray) -> np.ndarray:
    out = []
    for m in masks:
        ys, xs = np.nonzero(m)
        out.append([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1])
    return np.array(out, np.float32)


@pytest.mark.parametrize("seed", range(5))
def test_lsj_keeps_boxes_masks_and_image_aligned(seed):
    random.seed(seed)
    r = LargeScaleJitter(size=64, min_scale=0.5, max_scale=2.0)(RandomFlip(0.5)(_results()))
    assert r["image"].shape[0] <= 64 and r["image"].shape[1] <= 64
    assert r["masks"].shape[1:] == r["image"].shape[:2]
    assert len(r["boxes"]) == len(r["labels"]) == len(r["masks"])
    if len(r["boxes"]):
        np.testing.assert_allclose(r["boxes"], _mask_boxes(r["masks"]))


def test_flip_moves_boxes_with_masks():
    random.seed(0)
    r = RandomFlip(prob=1.0)(_results())
    np.testing.assert_allclose(r["boxes"], _mask_boxes(r["masks"]))
    packed = PackDetInputs()(r)
    assert packed["inputs"].shape == (3, 60, 80) and packed["data_samples"]["flip"]


def test_collate_pads_with_zeros():
    a, b = torch.ones(3, 10, 20, dtype=torch.uint8), torch.ones(3, 30, 5, dtype=torch.uint8)
    assert pad_images([a, b], size_divisor=16).shape == (2, 3, 32, 32)
    # default divisor: the coarsest stride (p6 = 64) of the default pyramid
    assert detection_collate([{"inputs": a, "data_samples": {}}])["inputs"].shape == (1, 3, 64, 64)
    batch = detection_collate([{"inputs": a, "data_samples": {}},
                               {"inputs": b, "data_samples": {}}], square_size=64)
    assert batch["inputs"].shape == (2, 3, 64, 64) and batch["inputs"][0, :, 10:].sum() == 0
    with pytest.raises(ValueError, match="square_size"):
        pad_images([a], square_size=8)


def _write_coco(tmp_path: Path, images, annotations, categories=None) -> Path:
    path = tmp_path / "ann.json"
    path.write_text(json.dumps({"images": images, "annotations": annotations,
                                "categories": categories or [{"id": 7, "name": "thing"}]}))
    return path


def test_coco_bad_input_is_reported(tmp_path):
    (tmp_path / "img").mkdir()
    from PIL import Image

    Image.new("RGB", (40, 30)).save(tmp_path / "img" / "a.png")
    images = [{"id": 1, "file_name": "a.png", "height": 30, "width": 40},
              {"id": 2, "file_name": "missing.png", "height": 30, "width": 40}]
    anns = [{"id": 1, "image_id": 1, "category_id": 7, "bbox": [2, 2, 10, 10], "iscrowd": 0,
             "segmentation": [[2, 2, 12, 2, 12, 12, 2, 12]]},
            {"id": 2, "image_id": 1, "category_id": 99, "bbox": [2, 2, 10, 10], "iscrowd": 0},
            {"id": 3, "image_id": 1, "category_id": 7, "bbox": [50, 50, 10, 10], "iscrowd": 0},
            {"id": 4, "image_id": 1, "category_id": 7, "bbox": [5, 5, 0, 4], "iscrowd": 0}]
    ds = CocoDetection(str(_write_coco(tmp_path, images, anns)), str(tmp_path / "img"))
    assert len(ds) == 1
    assert ds.skipped == {"missing image file": 1, "unknown category id": 1,
                          "zero-area or out-of-image box": 2}
    sample = ds[0]["data_samples"]
    assert sample["labels"].tolist() == [0] and sample["masks"].shape == (1, 30, 40)
    assert sample["masks"].sum() > 80
    with pytest.raises(FileNotFoundError, match="does not exist"):
        CocoDetection(str(tmp_path / "nope.json"), str(tmp_path / "img"))
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        CocoDetection(str(tmp_path / "bad.json"), str(tmp_path / "img"))
    with pytest.raises(ValueError, match="lists no images"):
        CocoDetection(str(_write_coco(tmp_path, [], [])), str(tmp_path / "img"))


def test_coco_metric_perfect_predictions_score_one(shapes):
    ann = shapes / "annotations/instances_val.json"
    ds = CocoDetection(str(ann), str(shapes / "val"))
    metric = CocoMetric(str(ann), outfile_dir=str(shapes / "out"))
    for i in range(len(ds)):
        s = ds[i]["data_samples"]
        metric.process({}, [{"boxes": s["boxes"], "scores": torch.ones(len(s["boxes"])),
                             "labels": s["labels"], "masks": s["masks"].bool(),
                             "image_id": s["image_id"]}])
    out = metric.compute_metrics(metric.results)
    assert out["bbox_AP"] == pytest.approx(1.0) and out["segm_AP"] == pytest.approx(1.0)
    assert json.loads((shapes / "out" / "results.segm.json").read_text())[0]["segmentation"]



@pytest.mark.parametrize("split", ["train2017", "val2017"])
def test_ground_truth_through_the_coco_path_scores_one(split):
    """Real COCO images: the test pipeline resizes (scale 0.4), the collate pads, the model's
    postprocess maps the ground-truth boxes back to original pixels (0-based labels, clipping),
    CocoMetric writes category ids and xywh boxes: a perfect detector must score AP 1.0, crowd
    regions included (left out of the targets, ignored by COCO)."""
    from conftest import data_dir

    root = data_dir("coco_tiny")
    ann = root / f"annotations/instances_{split}.json"
    pipeline = [ResizeLongestSide(256), PackDetInputs()]
    ds = CocoDetection(str(ann), str(root / "images" / split), pipeline, test_mode=True)
    originals = CocoDetection(str(ann), str(root / "images" / split), test_mode=True)
    model = MaskRCNN(**{**TINY_MODEL, "num_classes": 80}, with_mask=False).eval()
    metric = CocoMetric(str(ann))
    for start in range(0, len(ds), 4):
        items = [ds[i] for i in range(start, min(start + 4, len(ds)))]
        batch = detection_collate(items, square_size=256)
        for i, sample in enumerate(batch["data_samples"]):
            assert tuple(batch["inputs"].shape[-2:]) == (256, 256)
            det = {"boxes": sample["boxes"].float(), "scores": torch.ones(len(sample["boxes"])),
                   "labels": sample["labels"] + 1}
            pred = model.postprocess(det, sample)
            assert pred["ori_size"] != sample["img_size"]  # the round trip is exercised
            pred["masks"] = originals[start + i]["data_samples"]["masks"].bool()
            metric.process({}, [pred])
    out = metric.compute_metrics(metric.results)
    assert out["bbox_AP"] == pytest.approx(1.0) and out["segm_AP"] == pytest.approx(1.0)

TINY_MODEL = dict(backbone={"name": "PE-Test"}, num_classes=2, pyramid={"out_channels": 16},
                  rpn={"pre_nms_top_n": {"training": 100, "testing": 100},
                       "post_nms_top_n": {"training": 50, "testing": 50}},
                  box_head={"conv_dims": (16,), "fc_dims": (32,)},
                  mask_head={"conv_dims": (16,)}, roi={"batch_size_per_image": 16})


def _batch(square_size=64):
    sample = PackDetInputs()({**_results(48, 64), "scale": (0.5, 0.5), "ori_size": (96, 128)})
    return detection_collate([sample, sample], square_size=square_size)


def test_mask_rcnn_loss_and_predict_shapes():
    model = MaskRCNN(**TINY_MODEL)
    batch = _batch()
    losses = model.loss(batch["inputs"], batch["data_samples"])
    assert set(losses) == {"loss_objectness", "loss_rpn_box_reg", "loss_classifier",
                           "loss_box_reg", "loss_mask"}
    sum(losses.values()).backward()
    model.eval()
    with torch.no_grad():
        pred = model.predict(batch["inputs"], batch["data_samples"])[0]
    n = len(pred["boxes"])
    assert pred["masks"].shape == (n, 96, 128) and pred["labels"].max() < 2
    assert (pred["boxes"][:, 2] <= 128).all() and (pred["boxes"][:, 3] <= 96).all()
    with pytest.raises(RuntimeError, match="train"):
        model.loss(batch["inputs"], batch["data_samples"])


def test_engine_model_dispatches_modes_to_the_library():
    model = EngineMaskRCNN(**TINY_MODEL)
    assert isinstance(model, MaskRCNN)
    batch = _batch()
    assert {"loss_objectness", "loss_mask"} <= set(model(**batch, mode="loss"))
    model.eval()
    with torch.no_grad():
        maps = model(**batch, mode="tensor")
        sizes = [s["img_size"] for s in batch["data_samples"]]
        ref = MaskRCNN.forward(model, batch["inputs"], sizes)
        assert list(maps) == ["p2", "p3", "p4", "p5", "p6"]
        assert all(torch.equal(maps[k], ref[k]) for k in maps)
        pred = model(**batch, mode="predict")
        lib = model.predict(batch["inputs"], batch["data_samples"])
        assert torch.equal(pred[0]["boxes"], lib[0]["boxes"])
    with pytest.raises(RuntimeError, match="eval"):
        model.train()(**batch, mode="predict")


def test_stages_compose_to_predict():
    model = MaskRCNN(**TINY_MODEL).eval()
    batch = _batch()
    sizes = [s["img_size"] for s in batch["data_samples"]]
    with torch.no_grad():
        x = model.preprocess(batch["inputs"], sizes)
        assert x.dtype == torch.float32 and x.min() >= -1 and x[:, :, 48:].abs().sum() == 0
        feats = model.encode(x)
        assert {k: v.shape[-1] for k, v in feats.items()} == {"p2": 16, "p3": 8, "p4": 4,
                                                              "p5": 2, "p6": 1}
        dets = model.decode(feats, sizes)
        staged = [model.postprocess(d, s) for d, s in zip(dets, batch["data_samples"],
                                                           strict=True)]
        pred = model.predict(batch["inputs"], batch["data_samples"])
    for a, b in zip(staged, pred, strict=True):
        assert torch.equal(a["boxes"], b["boxes"]) and torch.equal(a["masks"], b["masks"])


def test_model_does_not_pad_and_says_which_collate_option_fixes_it():
    model = MaskRCNN(**TINY_MODEL).eval()
    assert model.size_divisibility == 64
    with pytest.raises(ValueError, match=r"48x64 .*size_divisor=64"):
        model(torch.zeros(1, 3, 48, 64, dtype=torch.uint8))
    with pytest.raises(TypeError, match="uint8"):
        model(torch.zeros(1, 3, 64, 64))
    # an old config's pyramid square_pad is accepted as a check of the collated size
    old = MaskRCNN(**{**TINY_MODEL, "pyramid": {"out_channels": 16, "square_pad": 128}})
    assert old.state_dict().keys() == model.state_dict().keys()
    assert old.inputs.square_size == 128
    with pytest.raises(ValueError, match="square_size=128"):
        old(_batch(square_size=64)["inputs"])


def test_predict_images_matches_the_test_pipeline_and_collate(shapes):
    from pe_dense.data.det_transforms import Compose

    cfg = load_config(TINY, tiny_options(shapes) + ["model.roi.score_thresh=0.0"])
    spec = dict(cfg.model)
    spec.pop("type")
    model = EngineMaskRCNN(**spec).eval()
    configure_inputs(model, cfg)
    assert model.inputs == DetInputs(resize=64, size_divisor=64, square_size=64)
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 255, (40, 50, 3), dtype=np.uint8),
              rng.integers(0, 255, (90, 30, 3), dtype=np.uint8)]
    pipeline = Compose(cfg.test_dataloader.dataset.pipeline)
    items = [pipeline({"image": im, "ori_size": im.shape[:2], "image_id": i})
             for i, im in enumerate(images)]
    with torch.no_grad():
        ref = model.test_step(detection_collate(items, square_size=64))
    got = model.predict_images(images)
    assert got[1]["masks"].shape[1:] == (90, 30)
    for a, b in zip(got, ref, strict=True):
        assert torch.equal(a["boxes"], b["boxes"]) and torch.equal(a["scores"], b["scores"])


def test_head_state_dict_loads_strictly():
    """Checkpoint keys and shapes are those of MaskRCNN before the redesign (recorded from the
    step-1 code with TINY_MODEL and pyramid square_pad=64)."""
    recorded = json.loads((ROOT / "tests/data/mask_rcnn_pe_test_state_dict.json").read_text())
    old = {k: torch.zeros(shape) for k, shape in recorded.items()}
    for cls in (MaskRCNN, EngineMaskRCNN):
        model = cls(**TINY_MODEL)
        assert {k: list(v.shape) for k, v in model.state_dict().items()} == recorded
        model.load_state_dict(old, strict=True)


def test_old_custom_imports_are_mapped(tmp_path):
    config = tmp_path / "old.py"
    config.write_text(f"_base_ = [{str(TINY)!r}]\ncustom_imports = dict(imports=["
                      "'pe_dense.models.detectors', 'pe_dense.data.coco', "
                      "'pe_dense.evaluation.coco'], allow_failed_imports=False)\n")
    cfg = load_config(config)
    assert list(cfg.custom_imports.imports) == ["pe_dense.engine.tasks.detection"]
    assert set(MOVED_IMPORTS.values()) == {f"pe_dense.engine.tasks.{t}" for t in
                                           ("detection", "segmentation", "depth", "distill")}
    for old in ("pe_dense.tasks.detection.model", "pe_dense.models.segmentors",
                "pe_dense.models.depth_models", "pe_dense.distill.runtime"):
        assert old in MOVED_IMPORTS
    config.write_text(f"_base_ = [{str(TINY)!r}]\ncustom_imports = dict(imports="
                      "['pe_dense.no_such_module'], allow_failed_imports=False)\n")
    with pytest.raises(ValueError, match="no_such_module"):
        load_config(config)


def test_library_imports_without_mmengine():
    code = ("import sys; sys.modules['mmengine'] = None\n"
            "import pe_dense.tasks.detection.model, pe_dense.data.coco, pe_dense.data.collate\n"
            "import pe_dense.data.det_transforms, pe_dense.evaluation.coco, "
            "pe_dense.necks.pyramid\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-2000:]


def test_coco_configs_follow_the_variant_table():
    # The recipe numbers, pinned: PE's official G config and ViTDet's per-depth values.
    common = dict(image_size=1024, patch_size=16, pretrain_image_size=512, window_size=32,
                  posemb_mode="tile", rope_mode="interpolate")
    for short, name, blocks, drop_path, decay in (
            ("t", "PE-Spatial-T16-512", (2, 5, 8, 11), 0.1, 0.7),
            ("s", "PE-Spatial-S16-512", (2, 5, 8, 11), 0.1, 0.7),
            ("b", "PE-Spatial-B16-512", (2, 5, 8, 11), 0.1, 0.7),
            ("l", "PE-Spatial-L14-448", (5, 11, 17, 23), 0.4, 0.8),
            ("g", "PE-Spatial-G14-448", (12, 24, 36, 49), 0.5, 0.9)):
        cfg = load_config(ROOT / f"configs/det/mask_rcnn_pe_spatial_{short}_coco.py")
        bb = cfg.model.backbone
        assert bb.name == name
        ref = dict(common, global_blocks=blocks, drop_path=drop_path)
        for key, value in ref.items():
            assert bb[key] == value, (short, key)
        assert bb.get("grad_checkpointing", False) == (short == "g")
        assert cfg.optim_wrapper.paramwise_cfg.layer_decay == decay
        assert cfg.train_dataloader.collate_fn.square_size == 1024
    g = load_config(ROOT / "configs/det/mask_rcnn_pe_spatial_g_coco.py")
    assert g.train_cfg.max_iters == 66375 and g.optim_wrapper.optimizer.lr == 5e-5


def test_windowed_t_detector_builds_at_1024():
    cfg = load_config(ROOT / "configs/det/mask_rcnn_pe_spatial_t_coco.py",
                      ["model.backbone.weights=None"])
    model_cfg = dict(cfg.model)
    model_cfg.pop("type")
    model = MaskRCNN(**model_cfg)
    assert model.backbone.window_size == 32 and model.backbone.num_prefix_tokens == 0
    assert model.pyramid.output_shape()["p6"] == (256, 64)
    assert "square_pad" not in cfg.model.pyramid and "custom_imports" not in cfg
    configure_inputs(model, cfg)
    assert model.inputs == DetInputs(resize=1024, size_divisor=64, square_size=1024)


def test_train_and_test_on_shapes_via_cli(shapes, tmp_path):
    from pe_dense.cli import main

    opts = tiny_options(shapes)
    work = tmp_path / "w"
    assert main(["train", str(TINY), "--work-dir", str(work), "--cfg-options", *opts]) == 0
    assert (work / "iter_2.pth").is_file() and (work / "results.bbox.json").is_file()
    assert main(["test", str(TINY), str(work / "iter_2.pth"), "--work-dir", str(work),
                 "--cfg-options", *opts]) == 0
    metrics = json.loads((work / "metrics.json").read_text())["metrics"]
    assert 0.0 <= metrics["coco/bbox_AP50"] <= 1.0 and "coco/segm_AP" in metrics


@pytest.mark.slow
def test_torchrun_two_processes_gloo(shapes, tmp_path):
    work = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
           "--master_port", "29631", str(ROOT / "tools/train.py"), str(TINY),
           "--launcher", "pytorch", "--work-dir", str(work), "--cfg-options",
           *tiny_options(shapes)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (work / "iter_2.pth").is_file()
    log = proc.stdout + proc.stderr
    assert "Distributed training: True" in log and "GPU number: 2" in log


def coco_tiny_options(train_split: str, val_split: str) -> list[str]:
    """--cfg-options that point a coco_tiny config at ../shared/data/coco_tiny's splits (the
    test skips where the data is absent)."""
    from conftest import data_dir

    root = data_dir("coco_tiny")
    ann = root / "annotations"
    return [f"train_dataloader.dataset.ann_file={ann}/instances_{train_split}2017.json",
            f"train_dataloader.dataset.img_dir={root}/images/{train_split}2017",
            f"val_dataloader.dataset.ann_file={ann}/instances_{val_split}2017.json",
            f"val_dataloader.dataset.img_dir={root}/images/{val_split}2017",
            f"val_evaluator.ann_file={ann}/instances_{val_split}2017.json"]


def test_coco_tiny_two_iterations_end_to_end(tmp_path):
    from conftest import data_dir

    from pe_dense.engine.runner import train

    opts = coco_tiny_options("train", "val")
    ann = data_dir("coco_tiny") / "annotations"
    runner = train(ROOT / "configs/det/mask_rcnn_pe_test_coco_tiny.py", work_dir=tmp_path,
                   cfg_options=opts)
    assert runner.iter == 2 and (tmp_path / "iter_2.pth").is_file()
    entries = json.loads((tmp_path / "results.bbox.json").read_text())
    cat_ids = {c["id"] for c in json.loads((ann / "instances_val2017.json").read_text())[
        "categories"]}
    assert all(e["category_id"] in cat_ids for e in entries)


def test_coco_tiny_overfit_config_scores_the_training_images(tmp_path):
    """The overfitting check trains and evaluates on the same real images, unaugmented."""
    from conftest import data_dir

    from pe_dense.engine.runner import train

    root = data_dir("coco_tiny")
    config = ROOT / "configs/det/mask_rcnn_pe_test_coco_tiny_overfit.py"
    cfg = load_config(config)
    train_set, val_set = cfg.train_dataloader.dataset, cfg.val_dataloader.dataset
    assert train_set.ann_file == val_set.ann_file == cfg.val_evaluator.ann_file
    assert train_set.img_dir == val_set.img_dir
    assert [t["type"] for t in train_set.pipeline] == ["ResizeLongestSide", "PackDetInputs"]

    ann = root / "annotations/instances_train2017.json"
    opts = coco_tiny_options("train", "train") + [
        "train_cfg.max_iters=2", "train_cfg.val_interval=2",
        "val_dataloader.dataset.max_images=4", "model.roi.score_thresh=0.0"]
    runner = train(config, work_dir=tmp_path, cfg_options=opts)
    assert runner.iter == 2 and (tmp_path / "iter_2.pth").is_file()
    entries = json.loads((tmp_path / "results.bbox.json").read_text())
    train_ids = {im["id"] for im in json.loads(ann.read_text())["images"]}
    assert entries and {e["image_id"] for e in entries} <= train_ids


def test_predictor_and_predict_command(shapes, tmp_path):
    from pe_dense.cli import main
    from pe_dense.engine.predictor import Predictor

    opts = tiny_options(shapes) + ["model.roi.score_thresh=0.0"]
    predictor = Predictor(TINY, cfg_options=opts)
    ckpt = tmp_path / "model.pth"
    torch.save({"state_dict": predictor.model.state_dict(),
                "meta": {"dataset_meta": {"classes": ["circle", "square", "triangle"]}}}, ckpt)
    image = shapes / "val" / "000000.png"
    pred = Predictor(TINY, ckpt, cfg_options=opts)(image)
    assert pred["masks"].shape[1:] == (64, 64) and len(pred["boxes"]) == len(pred["scores"])
    out = tmp_path / "out"
    assert main(["predict", str(TINY), str(ckpt), str(image), "--out", str(out),
                 "--score-threshold", "0", "--workers", "0", "--cfg-options", *opts]) == 0
    entries = json.loads((out / "results.json").read_text())
    assert len(entries) == len(pred["boxes"]) and (out / "vis" / "000000.png").is_file()
    val_ids = {im["file_name"]: im["id"] for im in json.loads(
        (shapes / "annotations" / "instances_val.json").read_text())["images"]}
    assert {e["image_id"] for e in entries} <= {val_ids["000000.png"]}  # the config's ids
    summary = json.loads((out / "summary.json").read_text())
    assert summary["weights"] == str(ckpt) and not summary["random_weights"]
    # random (no checkpoint) drawings carry the banner; trained ones not
    from pe_dense.viz.banner import has_banner

    assert predictor.random_weights and has_banner(predictor.draw(image, predictor(image)))
    assert not has_banner(np.asarray(Image.open(out / "vis" / "000000.png").convert("RGB")))
    assert main(["predict", str(TINY), str(ckpt), str(tmp_path / "nope.png"), "--out",
                 str(out), "--workers", "0", "--cfg-options", *opts]) == 3


@pytest.mark.slow
def test_resume_after_sigkill(shapes, tmp_path):
    import signal
    import time

    from pe_dense.engine.runner import train

    work = tmp_path / "killed"
    opts = tiny_options(shapes) + ["default_hooks.checkpoint.interval=2",
                                   "default_hooks.checkpoint.max_keep_ckpts=10"]
    cmd = [sys.executable, str(ROOT / "tools/train.py"), str(TINY), "--work-dir", str(work),
           "--cfg-options", *opts, "train_cfg.max_iters=1000", "train_cfg.val_interval=1000"]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 300
        while not (work / "iter_4.pth").exists() and time.time() < deadline:
            time.sleep(0.2)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    done = sorted(int(p.stem.split("_")[1]) for p in work.glob("iter_*.pth"))
    assert done and done[-1] >= 4, "the run made no checkpoint before it was killed"
    before = {p.name: p.stat().st_mtime_ns for p in work.glob("iter_*.pth")}
    runner = train(TINY, work_dir=work, resume=True,
                   cfg_options=opts + [f"train_cfg.max_iters={done[-1] + 2}"])
    assert runner.iter == done[-1] + 2
    assert (work / f"iter_{done[-1] + 2}.pth").is_file()
    # resumed, not restarted: the checkpoints from before the kill were not written again
    assert {n: (work / n).stat().st_mtime_ns for n in before} == before
