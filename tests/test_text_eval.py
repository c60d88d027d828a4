"""Scoring text-prompted label maps against ground truth (pe_dense.tasks.open_vocab.evaluate)
and ``pe-dense segment-text --eval-labels``: hand-made labels, tiny PE-Test, seconds."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from pe_dense.tasks.open_vocab.evaluate import TextMapScorer, format_summary, pair_labels

L1 = [[0, 1], [2, 2]]
L2 = [[0, 1], [1, 2]]
L3 = [[1, 1], [2, 255]]


def _write_labels(folder: Path, labels: dict[str, np.ndarray]) -> dict[str, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for stem, label in labels.items():
        paths[stem] = folder / f"{stem}.png"
        Image.fromarray(np.asarray(label, np.uint8)).save(paths[stem])
    return paths


def test_perfect_prediction_scores_100(tmp_path):
    rng = np.random.default_rng(0)
    labels = {f"{i:05d}": rng.integers(0, 3, (6, 8)) for i in range(3)}
    labels["00000"][0, :] = 255
    paths = _write_labels(tmp_path, labels)
    scorer = TextMapScorer(["background", "circle", "square"], ignore_index=255)
    for stem, label in labels.items():
        scorer.update(np.where(label == 255, 0, label), paths[stem])
    m = scorer.compute()["metrics"]
    assert (m["mIoU"], m["aAcc"], m["mAcc"]) == (100.0, 100.0, 100.0)
    assert m["IoU"] == {"background": 100.0, "circle": 100.0, "square": 100.0}


def test_baseline_equals_hand_computed(tmp_path):
    """Per position the most frequent class over the labels (a 4x4 label brought to 2x2 with
    nearest neighbours), resized back to each label and scored at the label's own size."""
    big = np.kron(np.array(L1), np.ones((2, 2), np.int64))
    paths = _write_labels(tmp_path, {"a": L1, "b": L2, "c": L3, "d": big})
    scorer = TextMapScorer(["x", "y", "z"])
    for stem in "abcd":
        label = np.asarray(Image.open(paths[stem]), np.int64)
        scorer.update(np.zeros_like(label), paths[stem])  # the model's score is not under test
    assert scorer.baseline_map().tolist() == [[0, 1], [2, 2]]
    result = scorer.compute()
    b = result["baseline"]
    # baseline [[0, 1], [2, 2]] against a, b, c (11 scored pixels, 9 right) and d (16 right):
    # class x: I 6, U 7; y: I 7, U 9; z: I 12, U 13
    assert b["IoU"] == pytest.approx({"x": 600 / 7, "y": 700 / 9, "z": 1200 / 13}, abs=1e-4)
    assert b["mIoU"] == pytest.approx((6 / 7 + 7 / 9 + 12 / 13) / 3 * 100, abs=1e-4)
    assert b["aAcc"] == pytest.approx(25 / 27 * 100, abs=1e-4)
    assert b["size"] == [2, 2] and result["num_images"] == 4
    # all-zero predictions: only class x is ever right (I 6 of U 27)
    assert result["metrics"]["IoU"]["x"] == pytest.approx(600 / 27, abs=1e-4)
    assert result["metrics"]["IoU"]["y"] == 0.0
    assert "4 images, 3 classes: mIoU" in format_summary(result)


def test_baseline_position_ignored_everywhere_takes_most_frequent_class(tmp_path):
    paths = _write_labels(tmp_path, {"a": [[255, 1], [1, 0]], "b": [[255, 1], [0, 0]],
                                     "c": [[255, 1], [1, 1]]})
    scorer = TextMapScorer(["x", "y"])
    for p in paths.values():
        scorer.update(torch.zeros(2, 2, dtype=torch.int64), p)
    assert scorer.baseline_map().tolist() == [[1, 1], [1, 0]]


def test_label_errors_name_the_file(tmp_path):
    paths = _write_labels(tmp_path / "labels", {"img0": [[0, 1], [3, 7]]})
    scorer = TextMapScorer(["background", "circle", "square"], ignore_index=255)
    with pytest.raises(ValueError) as err:
        scorer.update(np.zeros((2, 2), np.int64), paths["img0"])
    text = str(err.value)
    assert "img0.png" in text and "[3, 7]" in text
    assert "0 background, 1 circle, 2 square" in text and "ignore index is 255" in text
    assert TextMapScorer(["a", "b", "c", "d"], ignore_index=7).read(paths["img0"]).shape == (2, 2)
    with pytest.raises(ValueError, match="is 2x2 but the prediction for its image is 3x2"):
        TextMapScorer(["a", "b", "c", "d"], 7).update(np.zeros((2, 3)), paths["img0"])
    with pytest.raises(FileNotFoundError, match=r"no ground-truth label .*img1\.png for image "
                                                r"x/img1\.jpg \(1 of 2"):
        pair_labels(["x/img0.jpg", "x/img1.jpg"], tmp_path / "labels")
    with pytest.raises(FileNotFoundError, match="label folder .* does not exist"):
        pair_labels(["img0.jpg"], tmp_path / "nope")


@pytest.fixture()
def tiny_set(tmp_path) -> tuple[list[str], Path]:
    """Three 40x48 images with label maps of classes 0..2 (void 255 on the top rows)."""
    rng = np.random.default_rng(3)
    images, labels = tmp_path / "images", tmp_path / "labels"
    images.mkdir()
    files = []
    for i in range(3):
        label = (np.arange(48)[None, :].repeat(40, 0) // 16 + i) % 3
        label[:2] = 255
        Image.fromarray(rng.integers(0, 255, (40, 48, 3), np.uint8)).save(images / f"{i}.png")
        files.append(str(images / f"{i}.png"))
        _write_labels(labels, {str(i): label})
    return files, labels


def _segment_text(files: list[str], *extra: str) -> int:
    from pe_dense.cli.main import main

    return main(["segment-text", *files, "--model", "PE-Test", "--templates", "none",
                 "--short-side", "32", "--device", "cpu", *extra])


def test_cli_eval_labels_writes_metrics(tiny_set, tmp_path, capsys):
    pytest.importorskip("ftfy")
    files, labels = tiny_set
    out = tmp_path / "eval"
    assert _segment_text(files, "--prompts", "background,circle,square", "--eval-labels",
                         str(labels), "--no-save", "--out", str(out)) == 0
    assert sorted(p.name for p in out.iterdir()) == ["metrics.json"]
    printed = capsys.readouterr().out
    assert "3 images, 3 classes: mIoU" in printed and "image-independent baseline" in printed
    result = json.loads((out / "metrics.json").read_text())
    assert {"prompts", "class_names", "model", "recipe", "layer", "bridge", "weights",
            "random_weights", "num_images", "metrics", "baseline"} <= set(result)
    assert result["prompts"] == ["background", "circle", "square"]
    assert (result["model"], result["recipe"], result["layer"], result["bridge"]) == (
        "PE-Test", "selfself", -1, None)
    assert (result["weights"], result["random_weights"], result["num_images"]) == (
        "random", True, 3)
    for key in ("metrics", "baseline"):
        assert set(result[key]) >= {"mIoU", "aAcc", "mAcc", "IoU"}
        assert list(result[key]["IoU"]) == ["background", "circle", "square"]
        assert 0 <= result[key]["mIoU"] <= 100
    # the three labels are column stripes shifted by one class: the baseline gets a third right
    assert result["baseline"]["aAcc"] == pytest.approx(100 / 3, abs=0.5)
    # default: today's four files per image, plus metrics.json
    out2 = tmp_path / "saved"
    assert _segment_text(files[:1], "--prompts", "background,circle,square", "--eval-labels",
                         str(labels), "--out", str(out2)) == 0
    assert len(list(out2.iterdir())) == 5 and (out2 / "0_labels.png").is_file()


def test_cli_eval_errors(tiny_set, tmp_path, capsys):
    pytest.importorskip("ftfy")
    files, labels = tiny_set
    out = str(tmp_path / "eval")
    assert _segment_text(files, "--prompts", "circle,square", "--eval-labels", str(labels),
                         "--no-save", "--out", out) == 2
    err = capsys.readouterr().err
    assert "0.png has value(s) [2]" in err and "0 circle, 1 square" in err
    (labels / "2.png").unlink()
    assert _segment_text(files, "--prompts", "a,b,c", "--eval-labels", str(labels),
                         "--out", out) == 2
    assert "no ground-truth label" in capsys.readouterr().err
    assert _segment_text(files, "--prompts", "a,b,c", "--no-save", "--out", out) == 2
    assert "--no-save without --eval-labels" in capsys.readouterr().err


def test_text_tower_runs_once_per_command(tiny_set, tmp_path, monkeypatch):
    """The prompts' text embeddings are computed when the model is built, not per image."""
    pytest.importorskip("ftfy")
    from pe_dense.backbone.text import TextTransformer

    calls = []
    original = TextTransformer.encode_ids

    def counted(self, *a, **kw):
        calls.append(1)
        return original(self, *a, **kw)

    monkeypatch.setattr(TextTransformer, "encode_ids", counted)
    files, labels = tiny_set
    for n in (1, 3):
        calls.clear()
        assert _segment_text(files[:n], "--prompts", "a,b,c", "--eval-labels", str(labels),
                             "--no-save", "--out", str(tmp_path / f"o{n}")) == 0
        assert len(calls) == 1


def test_cli_eval_with_bridge(tiny_set, tmp_path):
    """With a bridge, class 0 is its background and the prompts are 1..K (the labels written)."""
    pytest.importorskip("ftfy")
    from pe_dense.tasks.open_vocab.bridge import BridgeSegmenter, save_bridge

    bridge = BridgeSegmenter(backbone=dict(name="PE-Test"), prompts=["circle", "square"],
                             text=dict(name="PE-Test", seed=0), hidden=32)
    save_bridge(bridge, tmp_path / "bridge.pth")
    files, labels = tiny_set
    out = tmp_path / "eval"
    from pe_dense.cli.main import main

    assert main(["segment-text", *files, "--bridge", str(tmp_path / "bridge.pth"),
                 "--short-side", "32", "--eval-labels", str(labels), "--no-save",
                 "--out", str(out)]) == 0
    result = json.loads((out / "metrics.json").read_text())
    assert result["prompts"] == ["circle", "square"]
    assert result["class_names"] == ["background", "circle", "square"]
    assert (result["model"], result["recipe"], result["bridge"], result["weights"]) == (
        "PE-Test", None, str(tmp_path / "bridge.pth"), "random")
    assert list(result["metrics"]["IoU"]) == ["background", "circle", "square"]
