"""End to end: `pe-dense track` on DAVIS-layout folders with the tiny random PE-Test model."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pe_dense.cli import main
from pe_dense.data.video import find_sequences, read_mask, write_mask
from pe_dense.evaluation.davis import summarize
from pe_dense.tracking.evaluate import evaluate_predictions, parse_layers
from tests.conftest import data_dir


def _short_davis(tmp_path: Path, frames: int = 4) -> Path:
    """A DAVIS-2016 folder with the first ``frames`` frames of each sample sequence (symlinks)."""
    src = data_dir("davis2016")
    root = tmp_path / "davis"
    for kind, ext in (("JPEGImages", "jpg"), ("Annotations", "png")):
        for seq_dir in sorted((src / kind / "480p").iterdir()):
            dst = root / kind / "480p" / seq_dir.name
            dst.mkdir(parents=True)
            for i in range(frames):
                os.symlink(seq_dir / f"{i:05d}.{ext}", dst / f"{i:05d}.{ext}")
    return root


def test_track_command_writes_masks_results_and_video(tmp_path):
    root = _short_davis(tmp_path)
    out = tmp_path / "out"
    rc = main(["track", "--data-root", str(root), "--model", "PE-Test", "--short-side", "64",
               "--out", str(out), "--save-video", "--sequences", "car-shadow,blackswan"])
    assert rc == 0
    for seq in ("blackswan", "car-shadow"):
        pngs = sorted((out / "masks" / seq).glob("*.png"))
        assert [p.name for p in pngs] == [f"{i:05d}.png" for i in range(4)]
        with Image.open(pngs[2]) as im:
            assert im.mode == "P" and im.size == (854, 480)
        assert set(np.unique(read_mask(pngs[2]))) <= {0, 1}
        assert (read_mask(pngs[0]) == read_mask(root / f"Annotations/480p/{seq}/00000.png")).all()
        assert (out / "videos" / f"{seq}.mp4").stat().st_size > 0
    rows = list(csv.DictReader(open(out / "results.csv")))
    assert [r["Sequence"] for r in rows] == ["car-shadow_1", "blackswan_1"]
    summary = json.loads((out / "summary.json").read_text())
    jf = summary["per_layer"]["3"]["J&F-Mean"]
    assert 0.0 <= jf <= 1.0 and summary["frames"] == 8 and summary["tracker_fps"] > 0
    # the written predictions re-scored from disk give the same numbers
    again = summarize(evaluate_predictions(root, out / "masks"))
    assert again["J&F-Mean"] == pytest.approx(jf)
    assert not list(out.rglob(".*tmp*"))


def test_layer_sweep_one_pass_writes_plot(tmp_path):
    root = _short_davis(tmp_path, frames=4)
    out = tmp_path / "sweep"
    rc = main(["track", "--data-root", str(root), "--model", "PE-Test", "--short-side", "64",
               "--out", str(out), "--layers", "all", "--sequences", "car-shadow"])
    assert rc == 0
    rows = list(csv.DictReader(open(out / "sweep.csv")))
    assert [int(r["layer"]) for r in rows] == [0, 1, 2, 3]
    assert (out / "sweep.png").stat().st_size > 0
    for layer in range(4):
        assert (out / f"layer_{layer:02d}" / "results.csv").is_file()
        assert len(list((out / f"layer_{layer:02d}" / "masks" / "car-shadow").glob("*.png"))) == 4
    assert json.loads((out / "summary.json").read_text())["best_layer"] in range(4)


def test_gt_as_prediction_scores_one(tmp_path):
    root = data_dir("davis2016")
    results = tmp_path / "gt_results"
    for seq in find_sequences(root):
        for t, frame in enumerate(seq.frames):
            write_mask(results / seq.name / f"{frame.stem}.png", read_mask(seq.masks[t]))
    g = summarize(evaluate_predictions(root, results))
    assert g["J&F-Mean"] == 1.0 and g["J-Mean"] == 1.0 and g["F-Mean"] == 1.0
    assert g["J-Decay"] == 0.0 and g["sequences"] == 2
    out = tmp_path / "scored"
    assert main(["track", "--data-root", str(root), "--evaluate", str(results),
                 "--out", str(out)]) == 0
    assert json.loads((out / "summary.json").read_text())["global"]["J&F-Mean"] == 1.0
    assert (out / "global_results.csv").read_text().splitlines()[1].startswith("1.000000")


def test_sparse_masks_are_prompts_and_size_mismatch_is_reported(tmp_path, capsys):
    root = data_dir("davis2017_first_frame")
    out = tmp_path / "sparse"
    rc = main(["track", "--data-root", str(root), "--model", "PE-Test", "--short-side", "64",
               "--out", str(out), "--sequences", "bike"])
    assert rc == 0
    assert len(list((out / "masks" / "bike").glob("*.png"))) == 4
    assert json.loads((out / "summary.json").read_text())["unscored_sequences"] == ["bike"]
    # judo's 00005.png is 853 pixels wide for 854-wide frames: a clear error, exit code 2
    rc = main(["track", "--data-root", str(root), "--model", "PE-Test", "--short-side", "64",
               "--out", str(out), "--sequences", "judo"])
    assert rc == 2 and "853x480 (WxH) but its frame is 854x480" in capsys.readouterr().err


def test_objects_appearing_later_from_sparse_masks(tmp_path):
    root = tmp_path / "late"
    frame = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    for i in range(4):
        (root / "images" / "s").mkdir(parents=True, exist_ok=True)
        Image.fromarray(frame).save(root / "images" / "s" / f"{i:05d}.png")
    first = np.zeros((64, 64), np.uint8)
    first[:32] = 1
    late = np.zeros((64, 64), np.uint8)
    late[40:, 40:] = 2
    write_mask(root / "masks" / "s" / "00000.png", first)
    write_mask(root / "masks" / "s" / "00002.png", late)
    out = tmp_path / "out"
    assert main(["track", "--data-root", str(root), "--model", "PE-Test", "--short-side", "64",
                 "--out", str(out)]) == 0
    assert 2 not in read_mask(out / "masks" / "s" / "00001.png")
    assert (read_mask(out / "masks" / "s" / "00002.png")[late > 0] == 2).all()
    assert 2 in read_mask(out / "masks" / "s" / "00003.png")


def test_bad_inputs_give_clear_errors(tmp_path, capsys):
    assert main(["track", "--data-root", str(tmp_path / "none"), "--model", "PE-Test",
                 "--out", str(tmp_path / "o")]) == 2
    assert "does not exist" in capsys.readouterr().err
    with pytest.raises(ValueError, match="selects no layer"):
        parse_layers("5:9", 4)
    with pytest.raises(ValueError, match="start:stop"):
        parse_layers("1:x", 4)
    assert parse_layers("20:50:2", 50) == list(range(20, 50, 2))
    assert parse_layers("-1,0", 24) == [0, 23]


def test_davis2017_multi_object_layout(tmp_path):
    # A DAVIS-2017 folder (palette ground truth on every frame, two objects, with void pixels):
    # the tracker follows both from the first mask and each object gets its own row.
    root = tmp_path / "d17"
    rng = np.random.default_rng(2)
    background = rng.integers(0, 100, (64, 96, 3), dtype=np.uint8)
    for t in range(4):
        frame = background.copy()
        mask = np.zeros((64, 96), np.uint8)
        frame[16:48, 16 * t:16 * t + 32] = (240, 20, 20)
        mask[16:48, 16 * t:16 * t + 32] = 1
        frame[48:64, 64:96] = (20, 240, 20)
        mask[48:64, 64:96] = 2
        mask[0, :8] = 255
        (root / "JPEGImages" / "480p" / "toy").mkdir(parents=True, exist_ok=True)
        Image.fromarray(frame).save(root / "JPEGImages" / "480p" / "toy" / f"{t:05d}.png")
        write_mask(root / "Annotations" / "480p" / "toy" / f"{t:05d}.png", mask)
    out = tmp_path / "out"
    assert main(["track", "--data-root", str(root), "--model", "PE-Test", "--layer", "0",
                 "--short-side", "64", "--out", str(out)]) == 0
    rows = {r["Sequence"]: r for r in csv.DictReader(open(out / "results.csv"))}
    assert set(rows) == {"toy_1", "toy_2"}
    (seq_row,) = csv.DictReader(open(out / "sequences.csv"))
    assert seq_row["Sequence"] == "toy" and seq_row["Objects"] == "2"
    assert float(seq_row["J-Mean"]) == pytest.approx(
        (float(rows["toy_1"]["J-Mean"]) + float(rows["toy_2"]["J-Mean"])) / 2, abs=1e-5)
    assert float(rows["toy_2"]["J-Mean"]) > 0.8 and float(rows["toy_1"]["J-Mean"]) > 0.5
    assert set(np.unique(read_mask(out / "masks" / "toy" / "00002.png"))) == {0, 1, 2}
