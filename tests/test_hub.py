"""Trained task models as hub repositories: save_pretrained / from_pretrained round trips give
identical predictions for every task, ``pe-dense push --local`` writes the repository with its
model card, ``pe-dense predict`` and ``demo --from`` read it, and without a network (offline
mode, no network at all, a hub that does not answer) every hub call fails in under 2 seconds
with a message that says how to use a local folder."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

pytest.importorskip("mmengine")
pytest.importorskip("safetensors")

from pe_dense.cli import main  # noqa: E402
from pe_dense.engine.hub import (  # noqa: E402
    from_pretrained,
    is_pretrained,
    resolve_pretrained,
    save_pretrained,
)
from pe_dense.engine.predictor import Predictor  # noqa: E402
from pe_dense.utils import hub as hub_utils  # noqa: E402
from pe_dense.viz.banner import has_banner  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RUNTIME = ROOT / "configs/_base_/default_runtime.py"
MODELS = {
    "seg": 'dict(type="Segmentor", backbone=dict(name="PE-Test"), head=dict(type="LinearHead"), '
           'num_classes=3)',
    "depth": 'dict(type="DepthEstimator", backbone=dict(name="PE-Test"), '
             'head=dict(type="LinearBinsHead"), min_depth=0.1, max_depth=10.0)',
    "det": 'dict(type="MaskRCNN", backbone=dict(name="PE-Test"), num_classes=3, '
           'pyramid=dict(type="SimpleFeaturePyramid", out_channels=32), '
           'anchor_sizes=((8,), (16,), (32,), (64,), (128,)), '
           'roi=dict(score_thresh=0.0, detections_per_img=5))',
}
TRAIN_DATA = ('train_dataloader = dict(batch_size=4, dataset=dict(type="CocoDetDataset", '
              'data_root="data/shapes", ann_file="annotations/instances_train.json"))\n'
              'train_cfg = dict(type="IterBasedTrainLoop", max_iters=30)\n')
NO_HUB = "http://127.0.0.1:9"  # nothing listens on the discard port: a hub that is not there


def _run(task: str, tmp_path: Path) -> tuple[Path, Path]:
    """A config and a training-style checkpoint (state dict + meta with class names and the
    iteration) of a tiny PE-Test model, with a metrics.json of that checkpoint beside it."""
    config = tmp_path / f"{task}_pe_test.py"
    config.write_text(f'_base_ = ["{RUNTIME}"]\nmodel = {MODELS[task]}\n{TRAIN_DATA}')
    torch.manual_seed(0)
    model = Predictor(config, device="cpu").model
    ckpt = tmp_path / f"work_{task}" / "iter_30.pth"
    ckpt.parent.mkdir(exist_ok=True)
    classes = ["circle", "square", "triangle"] if task != "depth" else None
    meta = {"iter": 30, "dataset_meta": {"classes": classes} if classes else {}}
    torch.save({"state_dict": model.state_dict(), "meta": meta}, ckpt)
    (ckpt.parent / "metrics.json").write_text(json.dumps(
        {"checkpoint": str(ckpt), "metrics": {"test/score": 0.25}}))
    return config, ckpt


def _image(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 255, (48, 64, 3), dtype=np.uint8)


def _same(a, b) -> bool:
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    a, b = (x.numpy() if isinstance(x, torch.Tensor) else np.asarray(x) for x in (a, b))
    return a.shape == b.shape and np.array_equal(a, b)


@pytest.mark.parametrize("task", ["seg", "depth", "det"])
def test_push_local_round_trip_gives_identical_predictions(task, tmp_path, capsys):
    config, ckpt = _run(task, tmp_path)
    repo = tmp_path / "repo"
    assert main(["push", str(config), str(ckpt), "me/pe-test-" + task, "--local", str(repo),
                 "--command", f"pe-dense train {config.name}"]) == 0
    assert "not uploaded" in capsys.readouterr().out
    assert sorted(p.name for p in repo.iterdir()) == ["README.md", "config.py",
                                                       "model.safetensors"]
    assert is_pretrained(repo) and not is_pretrained(config)
    original = Predictor(config, ckpt, device="cpu")
    loaded = Predictor.from_pretrained(repo, device="cpu")
    assert loaded.class_names == original.class_names and not loaded.random_weights
    for seed in (0, 1):
        image = _image(seed)
        assert _same(original(image), loaded(image))
    card = (repo / "README.md").read_text()
    assert "library_name: pe-dense" in card and "PE-Test" in card
    assert f"pe-dense train {config.name}" in card and "test/score | 0.2500" in card
    assert "CocoDetDataset (data_root=data/shapes" in card and "30 iterations" in card
    assert "Random weights" not in card
    assert {"depth": "depth-estimation", "seg": "image-segmentation",
            "det": "object-detection"}[task] in card


def test_random_weights_repo_says_so_everywhere(tmp_path):
    config, _ = _run("seg", tmp_path)
    untrained = Predictor(config, device="cpu")  # no checkpoint: random weights
    repo = save_pretrained(untrained, tmp_path / "repo", repo_id="me/untrained")
    card = (repo / "README.md").read_text()
    assert "Random weights, not a trained model" in card and "random-weights" in card
    assert "Predictor.from_pretrained(\"me/untrained\")" in card
    loaded = Predictor.from_pretrained(repo, device="cpu")
    assert loaded.random_weights
    image = _image()
    assert has_banner(loaded.draw(image, loaded(image)))
    model = from_pretrained(repo, device="cpu")
    assert model.meta["random_weights"] and model.class_names is None


def test_metrics_of_another_checkpoint_stay_out_of_the_card(tmp_path):
    config, ckpt = _run("depth", tmp_path)
    (ckpt.parent / "metrics.json").write_text(json.dumps(
        {"checkpoint": "work/iter_10.pth", "metrics": {"test/abs_rel": 0.5}}))
    repo = tmp_path / "repo"
    assert main(["push", str(config), str(ckpt), "me/x", "--local", str(repo)]) == 0
    card = (repo / "README.md").read_text()
    assert "abs_rel" not in card and "No `metrics.json`" in card
    assert "Training command\n\nNot recorded" in card


def test_predict_and_demo_read_a_repository_folder(tmp_path):
    pytest.importorskip("cv2")
    config, ckpt = _run("seg", tmp_path)
    repo = tmp_path / "repo"
    assert main(["push", str(config), str(ckpt), "me/x", "--local", str(repo)]) == 0
    images = tmp_path / "images"
    images.mkdir()
    for i in range(2):
        Image.fromarray(_image(i)).save(images / f"im{i}.png")
    a, b = tmp_path / "a", tmp_path / "b"
    assert main(["predict", str(repo), str(images), "--out", str(a), "--workers", "0"]) == 0
    assert main(["predict", str(config), str(ckpt), str(images), "--out", str(b),
                 "--workers", "0"]) == 0
    for name in ("im0", "im1"):  # the CHECKPOINT word was the first input
        pa, pb = (np.asarray(Image.open(d / "pred" / "images" / f"{name}.png")) for d in (a, b))
        assert np.array_equal(pa, pb)
    frames = tmp_path / "frames"
    assert main(["demo", "--from", str(repo), "--source", str(images), "--mode", "seg",
                 "--headless", "--save-frames", str(frames), "--resolution", "64"]) == 0
    assert len(list(frames.glob("*.png"))) == 2


def test_push_refuses_a_checkpoint_of_another_config(tmp_path, capsys):
    config, _ = _run("seg", tmp_path)
    _, other = _run("depth", tmp_path)
    assert main(["push", str(config), str(other), "me/x", "--local", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert "does not fit" in err or "builds a Segmentor" in err, err
    assert not (tmp_path / "r" / "model.safetensors").exists()


def test_not_a_repository_folder(tmp_path):
    (tmp_path / "config.py").write_text("model = dict()\n")
    with pytest.raises(FileNotFoundError, match="no model.safetensors"):
        resolve_pretrained(tmp_path)
    assert not is_pretrained(tmp_path)


# ----------------------------------------------------------------------------- offline

def _timed_failure(call) -> tuple[BaseException, float]:
    start = time.perf_counter()
    with pytest.raises((hub_utils.HubUnavailable, RuntimeError)) as info:
        call()
    return info.value, time.perf_counter() - start


@pytest.fixture
def fresh_probe(monkeypatch):
    """No probe result of another test reused."""
    monkeypatch.setattr(hub_utils, "_probe_cache", {})


@pytest.mark.parametrize("how", ["HF_HUB_OFFLINE", "no hub at the endpoint", "real network"])
def test_hub_calls_fail_fast_and_say_how_to_use_a_folder(how, fresh_probe, monkeypatch,
                                                         tmp_path, capsys):
    if how == "HF_HUB_OFFLINE":
        monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    elif how == "no hub at the endpoint":
        monkeypatch.setenv("HF_ENDPOINT", NO_HUB)
    elif hub_utils.hub_unreachable() is None:
        pytest.skip("the Hugging Face Hub is reachable here: no no-network test")
    error, seconds = _timed_failure(lambda: Predictor.from_pretrained("hf://me/pe-test-seg"))
    assert seconds < 2.0, seconds
    assert "DIR" in str(error) and "hf download me/pe-test-seg --local-dir DIR" in str(error)
    error, seconds = _timed_failure(
        lambda: __import__("pe_dense").create_backbone(
            "PE-Test", weights="hf://facebook/PE-Nothing-T16"))  # never in a cache
    assert seconds < 2.0 and "pass its local path" in str(error)
    start = time.perf_counter()
    assert main(["predict", "hf://me/pe-test-seg", "photo.jpg", "--out", str(tmp_path)]) == 2
    assert time.perf_counter() - start < 2.0
    assert "--local-dir DIR" in capsys.readouterr().err
    pytest.importorskip("cv2")
    start = time.perf_counter()
    assert main(["demo", "--web", "--from", "hf://me/pe-test-seg", "--port", "0"]) == 2
    assert time.perf_counter() - start < 2.0
    assert "hf download me/pe-test-seg --local-dir DIR" in capsys.readouterr().err


def test_cached_repository_is_used_offline(fresh_probe, monkeypatch, tmp_path):
    """A repository downloaded before is read from the cache with HF_HUB_OFFLINE=1."""
    import huggingface_hub

    config, ckpt = _run("seg", tmp_path)
    repo = tmp_path / "repo"
    assert main(["push", str(config), str(ckpt), "me/x", "--local", str(repo)]) == 0
    seen = {}

    def cached(repo_id, revision=None, local_files_only=False, **kwargs):
        seen.update(repo_id=repo_id, local_files_only=local_files_only)
        return str(repo)

    monkeypatch.setattr(huggingface_hub, "snapshot_download", cached)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    predictor = Predictor.from_pretrained("me/x", device="cpu")
    assert seen == {"repo_id": "me/x", "local_files_only": True}
    assert _same(predictor(_image()), Predictor(config, ckpt, device="cpu")(_image()))


def test_push_without_network_keeps_the_folder(fresh_probe, monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("HF_ENDPOINT", NO_HUB)
    config, ckpt = _run("depth", tmp_path)
    start = time.perf_counter()
    assert main(["push", str(config), str(ckpt), "me/x"]) == 2
    assert time.perf_counter() - start < 10  # the model is built and saved first
    err = capsys.readouterr().err
    assert "cannot push to hf://me/x" in err and "hf upload me/x" in err
