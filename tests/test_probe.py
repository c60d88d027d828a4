"""pe-dense probe: frozen-backbone probes of several encoders with their layer sweeps, on tiny
data made here (tiny PE-Test and a tiny random timm DINOv3), and on ../shared/data when present."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pe_dense.cli import main
from pe_dense.engine.probe import ProbeSettings, run_probe
from pe_dense.engine.probe.report import best_block, format_summary

TINY_TIMM = "timm/vit_small_patch16_dinov3"
TINY_TIMM_KW = {"depth": 2, "embed_dim": 64, "num_heads": 2}
SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def _image(rng: np.random.Generator, h: int, w: int, labels: np.ndarray) -> np.ndarray:
    colours = np.array([[200, 40, 40], [40, 200, 40], [40, 40, 200], [128, 128, 128]], np.uint8)
    noise = rng.integers(0, 40, (h, w, 3), dtype=np.uint8)
    return colours[labels % 4] + noise


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory) -> Path:
    """camvid_val (6 pairs, 3 classes + void 11), nyu_mini (6 pairs) and davis2016 (one
    5-frame sequence) at 48 x 64, in ../shared/data's layouts."""
    root = tmp_path_factory.mktemp("data")
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:48, :64]
    for i in range(6):
        labels = ((xx + 8 * i) // 22 % 3).astype(np.uint8)
        labels[:4] = 11  # void
        for sub, array in (("images", _image(rng, 48, 64, labels)), ("labels", labels)):
            (root / "camvid_val" / sub).mkdir(parents=True, exist_ok=True)
            Image.fromarray(array).save(root / "camvid_val" / sub / f"f{i:02d}.png")
        depth_mm = (1000 + 40 * yy + 100 * i).astype(np.uint16)
        (root / "nyu_mini").mkdir(exist_ok=True)
        Image.fromarray(_image(rng, 48, 64, yy // 12)).save(root / "nyu_mini" / f"image_{i}.png")
        Image.fromarray(depth_mm).save(root / "nyu_mini" / f"depth_{i}.png")
    frames = root / "davis2016" / "JPEGImages" / "480p" / "square"
    masks = root / "davis2016" / "Annotations" / "480p" / "square"
    frames.mkdir(parents=True)
    masks.mkdir(parents=True)
    for t in range(5):
        mask = ((abs(yy - 24) < 10) & (abs(xx - 20 - 3 * t) < 10)).astype(np.uint8) * 255
        Image.fromarray(_image(rng, 48, 64, (mask > 0).astype(np.int64))).save(
            frames / f"{t:05d}.jpg")
        Image.fromarray(mask, mode="L").save(masks / f"{t:05d}.png")
    return root


def _settings(data: Path, **kw) -> ProbeSettings:
    base = dict(short_side=32, track_short_side=32, iters=3, batch_size=2, max_frames=0,
                seg_data=str(data / "camvid_val"), depth_data=str(data / "nyu_mini"),
                davis_data=str(data / "davis2016"))
    return ProbeSettings(**{**base, **kw})


def test_probe_two_encoders_all_tasks(tiny_data, tmp_path):
    """Every block of a tiny PE and a tiny timm encoder gets each task's metric; the table, the
    JSON and the plot come out with one row / entry / line per encoder."""
    pytest.importorskip("timm")
    pytest.importorskip("matplotlib")
    settings = _settings(tiny_data, backbones=["PE-Test", TINY_TIMM],
                         overrides={TINY_TIMM: TINY_TIMM_KW})
    result = run_probe(settings, tmp_path)
    pe, dino = result["encoders"]
    assert (pe["num_layers"], pe["indices"], dino["num_layers"], dino["indices"]) == (
        4, [0, 1, 2, 3], 2, [0, 1])
    assert pe["random_weights"] and dino["random_weights"]
    for enc in (pe, dino):
        assert set(enc["tasks"]) == {"seg", "depth", "track"}
        for task, keys in (("seg", {"mIoU", "aAcc", "mAcc", "train_loss"}),
                           ("depth", {"rmse", "abs_rel", "d1", "train_loss"}),
                           ("track", {"J&F-Mean", "J-Mean", "F-Mean"})):
            per_block = enc["tasks"][task]["per_block"]
            assert list(per_block) == [str(i) for i in enc["indices"]]
            assert all(set(m) == keys for m in per_block.values())
            assert enc["tasks"][task]["seconds"] >= 0
        assert all(0 <= m["mIoU"] <= 100 for m in enc["tasks"]["seg"]["per_block"].values())
        assert all(m["rmse"] > 0 for m in enc["tasks"]["depth"]["per_block"].values())
        assert all(0 <= m["J&F-Mean"] <= 1 for m in enc["tasks"]["track"]["per_block"].values())
    assert json.loads((tmp_path / "probe.json").read_text()) == result
    markdown = (tmp_path / "probe.md").read_text()
    assert markdown.startswith("**Random weights** (PE-Test, timm/vit_small_patch16_dinov3)")
    table = [line for line in markdown.splitlines() if line.startswith("| ")]
    assert table[0] == ("| encoder | weights | blocks | seg mIoU % (block) | depth RMSE m "
                        "(block) | depth AbsRel | track J&F (block) |")
    assert [r.split(" | ")[0] for r in table[1:3]] == ["| PE-Test", f"| {TINY_TIMM}"]
    assert len(table) == 1 + 2 + 1 + 4 + 2  # summary (header + 2), per block (header + 6)
    png = Image.open(tmp_path / "probe.png")
    assert png.size[0] > 2 * png.size[1]  # three panels side by side


def test_best_block_and_summary():
    result = {"settings": {"tasks": ("seg", "depth")}, "encoders": [{
        "name": "A", "weights": "ckpt/a.pt", "random_weights": False, "num_layers": 3,
        "indices": [0, 2], "tasks": {
            "seg": {"per_block": {"0": {"mIoU": 20.0}, "2": {"mIoU": 30.0}}},
            "depth": {"per_block": {"0": {"rmse": 0.5, "abs_rel": 0.2},
                                    "2": {"rmse": 0.7, "abs_rel": 0.1}}}}}]}
    enc = result["encoders"][0]
    assert (best_block(enc, "seg"), best_block(enc, "depth"), best_block(enc, "track")) == (
        2, 0, None)
    lines = format_summary(result, markdown=True).splitlines()
    assert lines[2] == "| A | a.pt | 3 | 30.0 (2) | 0.500 (0) | 0.200 |"


def test_cli_probe_one_task_every_other_block(tiny_data, tmp_path, capsys):
    pytest.importorskip("matplotlib")
    out = tmp_path / "probe"
    code = main(["probe", "--backbones", "PE-Test", "--tasks", "seg,track", "--layers", "::2",
                 "--data", str(tiny_data), "--short-side", "32", "--track-short-side", "32",
                 "--iters", "2", "--max-frames", "0", "--device", "cpu", "--out", str(out)])
    assert code == 0
    printed = capsys.readouterr().out
    assert "[1/2] PE-Test: seg" in printed and "[2/2] PE-Test: track" in printed
    assert "seg mIoU % (block)" in printed and "track J&F (block)" in printed
    assert "depth" not in printed.split("[2/2]")[1]
    assert "random weights" in printed
    result = json.loads((out / "probe.json").read_text())
    assert result["encoders"][0]["indices"] == [0, 2]
    assert set(result["encoders"][0]["tasks"]) == {"seg", "track"}
    assert (out / "probe.png").is_file() and (out / "probe.md").is_file()


def test_cli_probe_bad_input(tiny_data, tmp_path, capsys):
    common = ["probe", "--data", str(tiny_data), "--out", str(tmp_path)]
    assert main([*common, "--backbones", "PE-Test", "--tasks", "seg,pose"]) == 2
    assert "unknown task(s) ['pose']" in capsys.readouterr().err
    assert main([*common, "--backbones", "PE-Test,PE-Test", "--weights", "a.pt"]) == 2
    assert "1 weights for 2 backbones" in capsys.readouterr().err
    assert main([*common, "--backbones", "PE-Test", "--davis", str(tmp_path / "none")]) == 2
    assert "--davis" in capsys.readouterr().err
    assert main([*common, "--backbones", "PE-Test", "--layers", "7", "--tasks", "seg"]) == 2
    assert "--layers '7'" in capsys.readouterr().err


def _split_root(root: Path, counts: dict[str, int]) -> Path:
    """``root/<split>/images|labels/NNNNN.png`` (4 classes, void 255) at 32 x 32 per split."""
    rng = np.random.default_rng(1)
    xx = np.mgrid[:32, :32][1]
    for split, n in counts.items():
        for i in range(n):
            labels = ((xx + 5 * i) // 8 % 4).astype(np.uint8)
            labels[:2] = 255
            for sub, array in (("images", _image(rng, 32, 32, labels)), ("labels", labels)):
                (root / split / sub).mkdir(parents=True, exist_ok=True)
                Image.fromarray(array).save(root / split / sub / f"{i:05d}.png")
    return root


@pytest.mark.parametrize("held", ["test", "val"])
def test_seg_splits_train_test_folders(tmp_path, held):
    """A root with train/ and test/ (or only val/): train on train/, score on test/, caps
    applied; test/ wins over val/; a root with train/ alone says what is missing."""
    from pe_dense.engine.probe.dense import seg_probe, seg_splits

    counts = {"train": 5, held: 3} | ({"val": 2} if held == "test" else {})
    root = _split_root(tmp_path / "world", counts)
    settings = ProbeSettings(["PE-Test"], tasks=("seg",), seg_data=str(root), seg_num_classes=4,
                             seg_ignore_index=255, max_train=4, iters=2, batch_size=2,
                             short_side=32)
    (train, train_keys), (test, test_keys), k, ignore = seg_splits(settings)
    assert (k, ignore, train_keys, test_keys) == (4, 255, [0, 1, 2, 3], [0, 1, 2])
    assert {Path(train.path_of(i)).parts[-3] for i in train_keys} == {"train"}
    assert {Path(test.path_of(i)).parts[-3] for i in test_keys} == {held}
    from pe_dense.backbone.factory import create_backbone

    result = seg_probe(create_backbone("PE-Test"), [-1], settings)
    assert 0 <= result[-1]["mIoU"] <= 100
    only_train = _split_root(tmp_path / "only_train", {"train": 2})
    with pytest.raises(FileNotFoundError, match="neither test/images nor val/images"):
        seg_splits(ProbeSettings(["PE-Test"], seg_data=str(only_train), seg_num_classes=4,
                                 seg_ignore_index=255))


def test_track_probe_reads_png_frames(tmp_path):
    """A DAVIS-layout folder with .png frames and palette masks (write_mask), as the synthetic
    world writes its clips, feeds the tracking probe."""
    from pe_dense.backbone.factory import create_backbone
    from pe_dense.data.video import write_mask
    from pe_dense.engine.probe.track import probe_sequences, track_probe

    rng = np.random.default_rng(2)
    yy, xx = np.mgrid[:32, :32]
    for clip in ("clip0", "clip1"):
        frames = tmp_path / "clips" / "JPEGImages" / "480p" / clip
        frames.mkdir(parents=True)
        for t in range(4):
            ids = ((abs(yy - 16) < 6) & (abs(xx - 8 - 3 * t) < 6)).astype(np.uint8)
            ids[(abs(yy - 6) < 4) & (abs(xx - 24) < 4)] = 2
            Image.fromarray(_image(rng, 32, 32, ids)).save(frames / f"{t:05d}.png")
            write_mask(tmp_path / "clips" / "Annotations" / "480p" / clip / f"{t:05d}.png", ids)
    settings = ProbeSettings(["PE-Test"], tasks=("track",), davis_data=str(tmp_path / "clips"),
                             track_short_side=32, max_frames=0)
    sequences = probe_sequences(settings)
    assert [(s.name, len(s), s.frames[0].suffix) for s in sequences] == [
        ("clip0", 4, ".png"), ("clip1", 4, ".png")]
    result = track_probe(create_backbone("PE-Test"), [3], settings)
    assert 0 <= result[3]["J&F-Mean"] <= 1


@pytest.mark.skipif(not (SHARED / "camvid_val").is_dir(), reason="../shared/data is absent")
def test_probe_on_shared_data(tmp_path):
    """The default data (CamVid, NYU mini, DAVIS-2016), cut short: real images through every
    protocol of one tiny encoder, last two blocks."""
    settings = ProbeSettings(["PE-Test"], layers="-2,-1", short_side=48, track_short_side=48,
                             iters=2, max_train=2, max_eval=2, max_frames=4,
                             seg_data=str(SHARED / "camvid_val"),
                             depth_data=str(SHARED / "nyu_mini"),
                             davis_data=str(SHARED / "davis2016"))
    result = run_probe(settings, tmp_path)
    tasks = result["encoders"][0]["tasks"]
    assert list(tasks["seg"]["per_block"]) == ["2", "3"]
    assert all(m["rmse"] > 0 for m in tasks["depth"]["per_block"].values())
    assert all(0 <= m["J&F-Mean"] <= 1 for m in tasks["track"]["per_block"].values())
