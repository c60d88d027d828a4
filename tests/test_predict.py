"""``pe-dense predict`` on a user's data: inputs of every kind, the tasks' standard result files,
bad inputs skipped and listed, resume, several processes, and a task registered from outside."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

pytest.importorskip("mmengine")
pytest.importorskip("pycocotools")

from pe_dense.cli import main  # noqa: E402
from pe_dense.engine.predictor import Predictor  # noqa: E402
from pe_dense.tasks.results import read_png  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "configs/det/mask_rcnn_pe_test_shapes_tiny.py"
RUNTIME = ROOT / "configs/_base_/default_runtime.py"


def det_options(shapes: Path) -> list[str]:
    ann = shapes / "annotations"
    return [f"test_dataloader.dataset.ann_file={ann}/instances_val.json",
            f"test_dataloader.dataset.img_dir={shapes}/val",
            f"val_dataloader.dataset.ann_file={ann}/instances_val.json",
            f"val_dataloader.dataset.img_dir={shapes}/val",
            f"train_dataloader.dataset.ann_file={ann}/instances_train.json",
            f"train_dataloader.dataset.img_dir={shapes}/train",
            f"val_evaluator.ann_file={ann}/instances_val.json",
            f"test_evaluator.ann_file={ann}/instances_val.json",
            "model.roi.score_thresh=0.0"]


@pytest.fixture(scope="module")
def det_ckpt(shapes, tmp_path_factory) -> Path:
    torch.manual_seed(0)
    predictor = Predictor(TINY, cfg_options=det_options(shapes), device="cpu")
    ckpt = tmp_path_factory.mktemp("det") / "det.pth"
    torch.save({"state_dict": predictor.model.state_dict(),
                "meta": {"dataset_meta": {"classes": ["circle", "square", "triangle"]}}}, ckpt)
    return ckpt


def _predict(*args: str | Path) -> int:
    return main(["predict", *(str(a) for a in args)])


def test_results_json_scores_like_pe_dense_test(shapes, det_ckpt, tmp_path):
    """results.json over the val folder, scored by pycocotools, equals pe-dense test."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    opts = det_options(shapes)
    assert main(["test", str(TINY), str(det_ckpt), "--work-dir", str(tmp_path / "test"),
                 "--cfg-options", *opts]) == 0
    metrics = json.loads((tmp_path / "test" / "metrics.json").read_text())["metrics"]
    out = tmp_path / "pred"
    assert _predict(TINY, det_ckpt, shapes / "val", "--out", out, "--no-draw", "--workers", "1",
                    "--batch-size", "2", "--cfg-options", *opts) == 0
    gt = COCO(str(shapes / "annotations" / "instances_val.json"))
    entries = json.loads((out / "results.json").read_text())
    assert entries and set(entries[0]) >= {"image_id", "category_id", "bbox", "score",
                                           "segmentation"}
    reference = json.loads((tmp_path / "test" / "results.bbox.json").read_text())

    def boxes(items):
        return np.array(sorted((e["image_id"], e["category_id"], *e["bbox"], e["score"])
                               for e in items))

    ours, theirs = boxes(entries), boxes(reference)
    assert ours.shape == theirs.shape and np.allclose(ours, theirs, atol=0.01)  # box for box
    dt = gt.loadRes(str(out / "results.json"))
    for iou_type in ("bbox", "segm"):
        ev = COCOeval(gt, dt, iou_type)
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
        key = next(k for k in metrics if k.endswith(f"{iou_type}_AP"))
        assert ev.stats[0] == pytest.approx(metrics[key], abs=1e-3), iou_type
    assert not (out / "images.json").exists()  # the annotation file's ids were used


def test_own_ids_images_json_and_a_bad_file_among_good_ones(shapes, det_ckpt, tmp_path):
    from pycocotools.coco import COCO

    data = tmp_path / "mine"
    (data / "sub").mkdir(parents=True)
    for i, name in enumerate(["a.png", "sub/b.jpg", "sub/c.PNG"]):
        Image.open(shapes / "val" / f"00000{i}.png").convert("RGB").save(data / name)
    (data / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    (data / "notes.txt").write_text("ignored: not an image")
    out = tmp_path / "out"
    code = _predict(TINY, det_ckpt, data, "--out", out, "--workers", "2",
                    "--ann-file", shapes / "annotations" / "instances_train.json",
                    "--cfg-options", *det_options(shapes))
    assert code == 2  # an explicit annotation file must hold every input
    code = _predict(TINY, det_ckpt, data, "--out", out, "--workers", "2",
                    "--cfg-options", *det_options(shapes))
    assert code == 1  # some inputs failed, the others were written
    failed = (out / "failed.txt").read_text().splitlines()
    assert len(failed) == 1 and "broken.jpg" in failed[0] and "Traceback" not in failed[0]
    images = COCO(str(out / "images.json"))
    names = sorted(im["file_name"] for im in images.dataset["images"])
    assert [Path(n).name for n in names] == ["a.png", "b.jpg", "c.PNG"]
    results = images.loadRes(str(out / "results.json"))
    assert set(results.getImgIds()) <= set(images.getImgIds())
    for key in ("mine/a", "mine/sub/b", "mine/sub/c"):
        assert (out / "vis" / f"{key}.png").is_file()


def test_resume_skips_finished_inputs(shapes, det_ckpt, tmp_path):
    opts = det_options(shapes)
    files = [shapes / "val" / f"00000{i}.png" for i in range(3)]
    listing = tmp_path / "list.txt"
    listing.write_text("\n".join(str(f) for f in files) + "\n# a comment\n")
    out = tmp_path / "out"
    assert _predict(TINY, det_ckpt, files[0], "--out", out, "--workers", "0",
                    "--cfg-options", *opts) == 0
    first = (out / "vis" / "000000.png").stat().st_mtime_ns
    assert _predict(TINY, det_ckpt, listing, "--out", out, "--workers", "0", "--skip-existing",
                    "--cfg-options", *opts) == 0
    assert (out / "vis" / "000000.png").stat().st_mtime_ns == first  # not predicted again
    summary = json.loads((out / "summary.json").read_text())
    assert summary["predicted"] == 3 and summary["failed"] == 0
    ids = {e["image_id"] for e in json.loads((out / "results.json").read_text())}
    assert len(ids) == 3  # the first run's detections were kept in the merge


def test_video_input_every_frame_and_annotated_video(shapes, det_ckpt, tmp_path):
    cv2 = pytest.importorskip("cv2")
    video = tmp_path / "clip.mp4"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"mp4v"), 5, (64, 64))
    for i in range(6):
        frame = np.asarray(Image.open(shapes / "val" / f"00000{i % 4}.png").convert("RGB"))
        writer.write(np.ascontiguousarray(frame[..., ::-1]))
    writer.release()
    out = tmp_path / "out"
    assert _predict(TINY, det_ckpt, video, "--every", "2", "--out", out, "--workers", "2",
                    "--cfg-options", *det_options(shapes)) == 0
    assert sorted(p.name for p in (out / "vis" / "clip").iterdir()) == \
        ["000000.png", "000002.png", "000004.png"]
    cap = cv2.VideoCapture(str(out / "vis" / "clip.mp4"))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 3
    cap.release()
    images = json.loads((out / "images.json").read_text())["images"]
    assert [im["file_name"] for im in images] == [f"{video}#{i}" for i in (0, 2, 4)]


def _dense_config(tmp_path: Path, task: str) -> Path:
    if task == "seg":
        model = ('dict(type="Segmentor", backbone=dict(name="PE-Test"), '
                 'head=dict(type="LinearHead"), num_classes=3, class_names=("a", "b", "c"))')
    else:
        model = ('dict(type="DepthEstimator", backbone=dict(name="PE-Test"), '
                 'head=dict(type="LinearBinsHead"), min_depth=0.1, max_depth=10.0)')
    path = tmp_path / f"{task}.py"
    path.write_text(f'_base_ = ["{RUNTIME}"]\nmodel = {model}\n')
    return path


def _dense_ckpt(config: Path) -> Path:
    torch.manual_seed(0)
    model = Predictor(config, device="cpu").model
    ckpt = config.with_suffix(".pth")
    torch.save({"state_dict": model.state_dict()}, ckpt)
    return ckpt


def _images(tmp_path: Path, n: int = 2) -> Path:
    folder = tmp_path / "images"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(n):
        Image.fromarray(rng.integers(0, 255, (40, 56, 3), dtype=np.uint8)).save(
            folder / f"im{i}.png")
    return folder


def test_segmentation_label_maps_read_back_equal_the_predictions(tmp_path):
    config = _dense_config(tmp_path, "seg")
    ckpt = _dense_ckpt(config)
    images = _images(tmp_path)
    out = tmp_path / "out"
    assert _predict(config, ckpt, images, "--out", out, "--save-logits", "--workers", "0") == 0
    predictor = Predictor(config, ckpt, device="cpu")
    for path in sorted(images.iterdir()):
        pred = predictor(path)
        labels = read_png(out / "pred" / "images" / f"{path.stem}.png")
        assert labels.shape == (40, 56) and np.array_equal(labels, pred)
        with Image.open(out / "pred" / "images" / f"{path.stem}.png") as im:
            assert im.mode == "P"  # a palette PNG: pixel = class index
        logits = np.load(out / "pred" / "images" / f"{path.stem}.npz")["logits"]
        assert logits.shape == (3, 40, 56)
        assert np.array_equal(logits.argmax(0), labels)
    drawn = Image.open(out / "vis" / "images" / "im0.png")
    assert drawn.height == 40


def test_depth_pngs_round_trip_within_a_millimetre(tmp_path):
    from pe_dense.tasks.depth.results import png_to_depth

    config = _dense_config(tmp_path, "depth")
    ckpt = _dense_ckpt(config)
    images = _images(tmp_path, 1)
    out = tmp_path / "out"
    assert _predict(config, ckpt, images / "im0.png", "--out", out, "--save-raw", "--no-draw",
                    "--workers", "0") == 0
    png = read_png(out / "pred" / "im0.png")
    assert png.dtype == np.uint16 and png.shape == (40, 56)
    raw = np.load(out / "pred" / "im0.npy")
    expected = Predictor(config, ckpt, device="cpu")(images / "im0.png")
    assert np.allclose(raw, expected, atol=1e-5)
    assert np.abs(png_to_depth(png) - raw).max() <= 0.0005 + 1e-6
    assert not (out / "vis").exists()


def test_sliced_detection_and_sliding_window_dense_run_end_to_end(shapes, det_ckpt, tmp_path):
    big = np.concatenate([np.asarray(Image.open(shapes / "val" / f"00000{i}.png").convert("RGB"))
                          for i in range(4)], axis=1)  # 64 x 256
    Image.fromarray(big).save(tmp_path / "big.png")
    out = tmp_path / "det"
    assert _predict(TINY, det_ckpt, tmp_path / "big.png", "--slice", "64", "--overlap", "0.25",
                    "--out", out, "--workers", "0", "--cfg-options", *det_options(shapes)) == 0
    entries = json.loads((out / "results.json").read_text())
    assert all(e["segmentation"]["size"] == [64, 256] for e in entries)
    config = _dense_config(tmp_path, "seg")
    ckpt = _dense_ckpt(config)
    out = tmp_path / "seg"
    assert _predict(config, ckpt, tmp_path / "big.png", "--slice", "32", "--out", out,
                    "--workers", "0") == 0
    assert read_png(out / "pred" / "big.png").shape == (64, 256)


@pytest.mark.parametrize("content", [b"", b"GIF89a garbage", None])
def test_bad_inputs_give_a_short_message_and_bounded_memory(shapes, det_ckpt, tmp_path,
                                                            content, capsys):
    if content is None:  # a decompression bomb: 20000 x 12000, a few KB on disk
        bad = tmp_path / "bomb.png"
        Image.new("1", (20000, 12000)).save(bad)
    else:
        bad = tmp_path / "bad.gif"
        bad.write_bytes(content)
    folder = tmp_path / "folder.png"  # a directory named like an image
    folder.mkdir()
    thin = tmp_path / "thin.png"
    Image.new("RGB", (4000, 3)).save(thin)
    out = tmp_path / "out"
    code = _predict(TINY, det_ckpt, bad, thin, shapes / "val" / "000000.png", "--out", out,
                    "--workers", "0", "--cfg-options", *det_options(shapes))
    assert code == 1
    printed = capsys.readouterr().out
    assert "Traceback" not in printed
    failed = (out / "failed.txt").read_text().splitlines()
    assert len(failed) == 2 and all(len(line) < 400 for line in failed)
    assert "aspect" in failed[1]


@pytest.mark.slow
def test_two_processes_give_the_same_results_as_one(shapes, det_ckpt, tmp_path):
    opts = det_options(shapes)
    one, two = tmp_path / "one", tmp_path / "two"
    assert _predict(TINY, det_ckpt, shapes / "val", "--out", one, "--workers", "0",
                    "--cfg-options", *opts) == 0
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
           str(ROOT / "tools/predict.py"), str(TINY), str(det_ckpt), str(shapes / "val"),
           "--out", str(two), "--workers", "0", "--cfg-options", *opts]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert json.loads((one / "results.json").read_text()) == \
        json.loads((two / "results.json").read_text())
    assert json.loads((two / "summary.json").read_text())["processes"] == 2
