"""The paper in miniature end to end at tiny sizes: `tools/paper_in_miniature.py --tiny` runs
every stage (world, contrastive stage 1, zero-shot, layer sweep, distillation with the
ground-truth mask teacher, sweep of the student, text-prompted maps, figures) in seconds, and
each stage writes what the next reads."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

pytest.importorskip("open_clip")  # the CLIP tokenizer's vocabulary
pytest.importorskip("matplotlib")

ROOT = Path(__file__).resolve().parents[1]


def _tool():
    spec = importlib.util.spec_from_file_location("paper_in_miniature",
                                                  ROOT / "tools/paper_in_miniature.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("mini")
    assert _tool().main(["--tiny", "--out", str(out), "--threads", "1"]) == 0
    return out, json.loads((out / "results.json").read_text())


def test_every_stage_ran_and_recorded_its_time_load_and_commands(tiny_run) -> None:
    out, results = tiny_run
    tool = _tool()
    assert list(results["stages"]) == list(tool.STAGES)
    for name, stage in results["stages"].items():
        assert stage["seconds"] >= 0 and len(stage["load"]) == 2, name
    assert any(c.startswith("pe-dense train ") for c in results["stages"]["stage1"]["commands"])
    assert results["targets"]["minutes"] > 0
    assert "| block | seg mIoU | J&F |" in (out / "summary.md").read_text()


def test_stage1_writes_a_clip_that_the_later_stages_read(tiny_run) -> None:
    from pe_dense.backbone.clip import create_clip

    out, results = tiny_run
    create_clip("PE-Mini", weights=str(out / "stage1" / "clip.pt"))  # strict
    zs = results["stages"]["zeroshot"]
    assert len(zs["labels"]) == 16 and zs["chance"] == pytest.approx(1 / 16)
    for model in ("stage1", "random"):
        assert 0 <= zs[model]["accuracy"] <= 1 and set(zs[model]) >= {"seen", "heldout"}


def test_sweeps_cover_every_block_and_stage2_uses_an_inner_block(tiny_run) -> None:
    out, results = tiny_run
    s1, s2 = results["stages"]["sweep1"], results["stages"]["sweep2"]
    assert s1["blocks"] == s2["blocks"] == list(range(8))
    assert len(s1["seg_miou"]) == len(s1["track_jf"]) == 8
    assert all(np.isfinite(s1["seg_miou"])) and all(np.isfinite(s2["track_jf"]))
    assert 0 <= s1["teacher_layer"] < 7
    assert results["stages"]["stage2"]["teacher_layer"] == s1["teacher_layer"]
    config = (out / "configs" / "stage2.py").read_text()
    assert f"teacher_layer = {s1['teacher_layer']}" in config
    student = torch.load(out / "stage2" / "student.pt", map_location="cpu", weights_only=True)
    assert any(k.startswith("transformer.resblocks.7.") for k in student)


def test_text_maps_are_scored_against_the_baseline(tiny_run) -> None:
    _, results = tiny_run
    text = {k: v for k, v in results["stages"]["text"].items() if "/" in k}  # the runs
    expected = {f"{m}/{r}/{k}" for m in ("stage1", "random") for r in ("maskclip", "selfself")
                for k in ("shapes", "colours")} | {"stage1/bridge/shapes"}
    assert set(text) == expected
    for key, m in text.items():
        assert 0 <= m["mIoU"] <= 100 and 0 <= m["baseline_mIoU"] <= 100, key
        assert len(m["IoU"]) == 5, key
    ratios = results["targets"]["training_free_shapes_mIoU_over_baseline"]
    assert set(ratios) == {"stage1/maskclip/shapes", "stage1/selfself/shapes"}


def test_figures_have_the_expected_shapes(tiny_run) -> None:
    out, results = tiny_run
    figures = results["stages"]["figures"]
    curves = np.asarray(Image.open(figures["layer_curves"]))
    assert curves.ndim == 3 and curves.shape[1] > curves.shape[0]
    pca = np.asarray(Image.open(figures["pca"]))
    size = results["stages"]["world"]["meta"]["image_size"]
    assert pca.shape == (4 * size * 2, 4 * size * 2, 3)  # 4 images x 4 panels, shown at 2x


def test_rerun_skips_finished_stages_and_refuses_another_profile(tiny_run, capsys) -> None:
    out, results = tiny_run
    tool = _tool()
    assert tool.main(["--tiny", "--out", str(out), "--stages", "world,stage1"]) == 0
    assert "=== stage1: done" in capsys.readouterr().out
    with pytest.raises(SystemExit, match="tiny run"):
        tool.main(["--out", str(out), "--stages", "world"])
