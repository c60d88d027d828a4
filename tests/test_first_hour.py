"""A new user's first hour (issue 13): short, correct checkpoint-mismatch reports; random weights
marked on every picture and recorded as ``weights: null``; a torch-free, fast ``--help`` and
``info``; ``--max-frames``; set-up that says what it does and skips a ready venv; warnings."""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import pe_dense
from pe_dense.backbone.variants import VARIANTS, get_variant, param_count
from pe_dense.backbone.weights import WeightLoadError, load_state_dict_checked
from pe_dense.cli import main
from pe_dense.cli.main import COMMANDS
from pe_dense.viz.banner import RANDOM_WEIGHTS, add_banner, has_banner

ROOT = Path(__file__).resolve().parents[1]


def _meta_state_dict(name: str, **overrides) -> dict[str, torch.Tensor]:
    with torch.device("meta"):
        return pe_dense.create_backbone(name, **overrides).state_dict()


def _error(model: torch.nn.Module, sd: dict) -> WeightLoadError:
    with pytest.raises(WeightLoadError) as err:
        pe_dense.load_weights(model, sd)
    return err.value


# ----------------------------------------------------------------------------- point 1

def test_wrong_variant_report_leads_with_summary_and_fix():
    """The issue's case: S16 weights given to PE-Spatial-T16-512."""
    err = _error(pe_dense.create_backbone("PE-Spatial-T16-512"),
                 _meta_state_dict("PE-Spatial-S16-512"))
    lines = str(err).splitlines()
    assert lines[:5] == [
        "checkpoint does not fit the model",
        "checkpoint format: official; 149 keys differ",
        "checkpoint: looks like PE-Spatial-S16-512 - width 384, 12 blocks, patch 16, "
        "grid 32x32, cls token, no head",
        "model: PE-Spatial-T16-512 - width 192, 12 blocks, patch 16, grid 32x32, cls token, "
        "no head",
        "they differ in: width"]
    assert lines[5].startswith("fix: build the model as PE-Spatial-S16-512: "
                               "--model PE-Spatial-S16-512")
    assert "image_size" not in str(err)  # the grid is not what differs
    key_lines = [line for line in lines if line.startswith("shape mismatch")]
    assert len(key_lines) == 10 and len(lines) == 17
    assert key_lines[0] == "shape mismatch class_embedding: checkpoint 384 vs model 192"
    assert ("shape mismatch transformer.resblocks.{0..11}.attn.in_proj_weight: checkpoint "
            "1152x384 vs model 576x192 (12 keys)") in key_lines
    shown = sum(int(m.group(1)) if (m := re.search(r"\((\d+) keys\)$", line)) else 1
                for line in key_lines)
    assert lines[-1] == (f"... and {149 - shown} more; full list with --verbose (or the "
                         "exception's .details)")
    assert len(err.details.splitlines()) == 149 and err.report.num_keys == 149
    assert "shape mismatch transformer.resblocks.7.mlp.c_proj.bias: checkpoint 384 vs model 192" \
        in err.details.splitlines()


@pytest.mark.parametrize("model_kw, ckpt_kw, differ, fix", [
    ({"layers": 2}, {}, "layers", "fix: build the model as PE-Test: --model PE-Test"),
    ({}, {"layers": 2}, "layers", "fix: no known variant has the checkpoint's sizes: build PEViT "
                                  "with width=64, layers=2"),
    ({"patch_size": 8}, {}, "patch, grid", "fix: build the model with patch_size=16, or "
                                           "resample the kernel"),
    ({"image_size": 128}, {}, "grid", "fix: build the model with image_size=64 (or "
                                      "pretrain_image_size=64)"),
    ({"pool_type": "attn", "output_dim": 32}, {}, "pool, proj",
     "fix: the checkpoint has no attention pool / proj head (a features-only tower): build "
     "PE-Test (--model PE-Test)"),
    ({}, {"pool_type": "attn", "output_dim": 32}, "pool, proj",
     "fix: the checkpoint has an attention pool / proj head the model lacks: build the model "
     "with pool_type='attn' and output_dim=32"),
])
def test_each_kind_of_mismatch_gets_its_own_fix(model_kw, ckpt_kw, differ, fix):
    err = _error(pe_dense.create_backbone("PE-Test", **model_kw),
                 pe_dense.create_backbone("PE-Test", **ckpt_kw).state_dict())
    text = str(err)
    assert f"they differ in: {differ}\n" in text and fix in text
    assert len(text.splitlines()) <= 20
    if differ != "grid":
        assert "image_size=" not in text or "patch" in differ


def test_patch_only_mismatch_does_not_blame_the_grid():
    """Patch 14 at 56 px against patch 16 at 64 px: the same 4x4 grid, so no image_size fix."""
    err = _error(pe_dense.create_backbone("PE-Test"),
                 pe_dense.create_backbone("PE-Test", patch_size=14, image_size=56).state_dict())
    assert "they differ in: patch\n" in str(err) and "image_size" not in str(err)
    assert "--patch-size 16" in str(err)


def test_text_tower_and_whole_model_checkpoints_are_named():
    sd = pe_dense.create_backbone("PE-Test").state_dict()
    text = dict(sd, **{"token_embedding.weight": torch.zeros(8, 4), "logit_scale": torch.ones(())})
    assert "the checkpoint also holds a text tower (2 keys" in str(
        _error(pe_dense.create_backbone("PE-Test"), text))
    detector = {f"backbone.{k}": v for k, v in sd.items()}
    detector.update({"neck.conv.weight": torch.zeros(2), "rpn.head.weight": torch.zeros(2)})
    msg = str(_error(pe_dense.create_backbone("PE-Test"), detector))
    assert "a whole task model (a detector or other head) with its PE backbone under " \
           "'backbone.' and 2 other keys" in msg
    assert "checkpoint: looks like PE-Test" in msg  # described from its backbone part


def test_report_serves_models_with_a_backbone_inside():
    """Engine/detectron2 loads go through the same check: the backbone is described by name."""
    def net(image_size: int = 64) -> torch.nn.Module:
        model = torch.nn.Module()
        model.backbone = pe_dense.create_backbone("PE-Test", image_size=image_size)
        return model

    with pytest.raises(WeightLoadError) as err:
        load_state_dict_checked(net(128), net().state_dict())
    assert "checkpoint backbone: looks like PE-Test" in str(err.value)
    assert "model backbone: PE-Test at 128 px - width 64" in str(err.value)


def test_cli_mismatch_is_short_and_verbose_is_complete(tmp_path, capsys):
    ckpt = tmp_path / "t16.pt"
    torch.save(pe_dense.create_backbone("PE-Spatial-T16-512").state_dict(), ckpt)
    args = ["features", "--model", "PE-Test", "--weights", str(ckpt), "--out", str(tmp_path)]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "fix: build the model as PE-Spatial-T16-512: --model PE-Spatial-T16-512" in err
    assert "Traceback" not in err and len(err.splitlines()) <= 20
    assert "(full list: pe-dense --verbose features ...; a traceback: pe-dense --debug" in err
    assert main(["--verbose", *args]) == 2
    assert len(capsys.readouterr().err.splitlines()) > 60  # every key
    demo = ["demo", "--source", "sample", "--sample-frames", "1", "--headless", "--output",
            str(tmp_path / "d.mp4"), "--model", "PE-Test", "--weights", str(ckpt)]
    assert main(demo) == 7
    err = capsys.readouterr().err
    assert "--model PE-Spatial-T16-512" in err and len(err.splitlines()) <= 20
    with pytest.raises(WeightLoadError):
        main(["--debug", *args])


# ----------------------------------------------------------------------------- point 2

def test_banner_helper():
    image = np.full((96, 128, 3), 90, np.uint8)
    marked = add_banner(image)
    assert marked.shape == image.shape and has_banner(marked) and not has_banner(image)
    assert (marked[:60] == image[:60]).all()  # only the bottom band changes
    assert RANDOM_WEIGHTS == "random weights - not a trained model"


def test_features_pictures_marked_only_when_random(tmp_path):
    weights = tmp_path / "test.pt"
    torch.save(pe_dense.create_backbone("PE-Test").state_dict(), weights)
    for name, extra in (("random", []), ("loaded", ["--weights", str(weights)])):
        out = tmp_path / name
        assert main(["features", "--model", "PE-Test", "--resolution", "64", "--out", str(out),
                     *extra]) == 0
        picture = np.asarray(Image.open(out / "sample_pca.png").convert("RGB"))
        record = json.loads((out / "features.json").read_text())
        assert has_banner(picture) == (name == "random")
        assert record["weights"] == (None if name == "random" else str(weights))


def test_demo_frames_marked_only_when_random(tmp_path):
    weights = tmp_path / "test.pt"
    torch.save(pe_dense.create_backbone("PE-Test").state_dict(), weights)
    common = ["demo", "--source", "sample", "--sample-frames", "2", "--headless", "--model",
              "PE-Test", "--resolution", "64", "--device", "cpu"]
    for name, extra in (("random", []), ("loaded", ["--weights", str(weights)]),
                        ("random_head", ["--weights", str(weights), "--mode", "depth"])):
        frames = tmp_path / name
        assert main([*common, "--save-frames", str(frames), *extra]) == 0
        for png in sorted(frames.glob("*.png")):
            assert has_banner(np.asarray(Image.open(png).convert("RGB"))) == (name != "loaded")


def test_tracking_overlays_marked_only_when_random():
    from pe_dense.tracking.evaluate import _overlay

    frame = np.full((64, 96, 3), 120, np.uint8)
    labels = np.zeros((64, 96), np.uint8)
    labels[10:30, 10:40] = 1
    assert has_banner(_overlay(frame, labels, random_weights=True))
    assert not has_banner(_overlay(frame, labels, random_weights=False))


# ----------------------------------------------------------------------------- points 4, 5

_NO_TORCH = """
import importlib.abc, sys, time
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("torch", "torchvision", "numpy", "mmengine", "cv2"):
            raise ImportError("blocked for the test: " + name)
sys.meta_path.insert(0, Block())
from pe_dense.cli.main import main
for argv in {argvs!r}:
    start = time.perf_counter()
    try:
        code = main(argv)
    except SystemExit as exc:
        code = exc.code
    print("RESULT", argv, code, round(time.perf_counter() - start, 3), flush=True)
assert "torch" not in sys.modules
"""


def test_help_and_info_run_without_torch():
    argvs = [["--help"], ["info"], ["info", "PE-Spatial-B16-512"]]
    argvs += [[name, "--help"] for name in COMMANDS]
    proc = subprocess.run([sys.executable, "-c", _NO_TORCH.format(argvs=argvs)], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    results = [line.split() for line in proc.stdout.splitlines() if line.startswith("RESULT")]
    assert len(results) == len(argvs) and all(r[-2] == "0" for r in results), results
    assert "--model MODEL         PE variant name or timm/<model name>" in proc.stdout
    assert re.search(r"^PE-Spatial-B16-512 +86\.4M +16 +768 +12 ", proc.stdout, re.M)


def test_top_level_help_lines_are_whole_sentences():
    for _, help_line in COMMANDS.values():
        assert help_line.endswith(".") and len(help_line) <= 70, help_line


def test_info_counts_equal_building_every_variant():
    official = {"PE-Spatial-G14-448": 1851.9, "PE-Spatial-L14-448": 304.0,
                "PE-Spatial-B16-512": 86.4, "PE-Spatial-S16-512": 22.0,
                "PE-Spatial-T16-512": 5.7, "PE-Core-G14-448": 1882.0, "PE-Core-L14-336": 317.2,
                "PE-Lang-G14-448": 1740.9}  # ../shared/docs/pe_reference.md section 1.1
    for name, cfg in VARIANTS.items():
        with torch.device("meta"):
            built = sum(p.numel() for p in pe_dense.create_backbone(name).parameters())
        assert param_count(cfg) == built, name
        if name in official:
            assert round(param_count(cfg) / 1e6, 1) == official[name], name
    assert param_count(get_variant("PE-Test")) == sum(
        p.numel() for p in pe_dense.create_backbone("PE-Test").parameters())


def _tiny_davis(root: Path, frames: int = 6) -> Path:
    for seq in ("a", "b"):
        (root / "JPEGImages/480p" / seq).mkdir(parents=True)
        (root / "Annotations/480p" / seq).mkdir(parents=True)
        for t in range(frames):
            image = np.full((48, 64, 3), 40 + 20 * t, np.uint8)
            image[10:30, 10 + t:30 + t] = 220
            Image.fromarray(image).save(root / f"JPEGImages/480p/{seq}/{t:05d}.jpg")
            mask = np.zeros((48, 64), np.uint8)
            mask[10:30, 10 + t:30 + t] = 1
            Image.fromarray(mask).save(root / f"Annotations/480p/{seq}/{t:05d}.png")
    return root


def test_track_max_frames_and_results_listing(tmp_path, capsys):
    root = _tiny_davis(tmp_path / "davis")
    out = tmp_path / "out"
    assert main(["track", "--data-root", str(root), "--model", "PE-Test", "--short-side", "48",
                 "--out", str(out), "--max-frames", "3", "--device", "cpu"]) == 0
    printed = capsys.readouterr().out
    assert [p.name for p in sorted((out / "masks" / "a").glob("*.png"))] == [
        "00000.png", "00001.png", "00002.png"]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["frames"] == 6 and summary["weights"] is None
    assert f"results in {out} (" in printed and "summary.json" in printed
    assert main(["track", "--data-root", str(root), "--out", str(out), "--max-frames",
                 "-1"]) == 2


def test_demo_max_frames(tmp_path, capsys):
    frames = tmp_path / "frames"
    assert main(["demo", "--source", "sample", "--sample-frames", "5", "--max-frames", "2",
                 "--headless", "--model", "PE-Test", "--resolution", "64", "--device", "cpu",
                 "--save-frames", str(frames)]) == 0
    assert len(list(frames.glob("*.png"))) == 2
    assert "2 frames from" in capsys.readouterr().out


# ----------------------------------------------------------------------------- point 3

def _fake_venv(tmp_path: Path, fail_on: str = "") -> Path:
    """A venv whose python fakes pip (and fails on a command line containing ``fail_on``)."""
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    python = venv / "bin" / "python"
    python.write_text("#!/usr/bin/env bash\n"
                      f'echo "pip chatter: $*"\n'
                      f'if [ -n "{fail_on}" ] && [[ "$*" == *"{fail_on}"* ]]; then '
                      'echo "ERROR: no matching distribution"; exit 1; fi\n'
                      'if [ "$1" = "-" ]; then echo "2.14.1 0.29.1"; fi\n')
    python.chmod(python.stat().st_mode | stat.S_IEXEC)
    return venv


def _setup(venv: Path, extras: str = "dev") -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(ROOT / "tools/setup_env.sh"), extras], cwd=ROOT,
                          env={**os.environ, "PE_DENSE_VENV": str(venv)}, capture_output=True,
                          text=True, timeout=60)


def test_setup_prints_steps_hides_pip_and_skips_a_ready_venv(tmp_path):
    venv = _fake_venv(tmp_path)
    first = _setup(venv)
    assert first.returncode == 0, first.stderr
    assert "installing pe-dense[dev] (editable)" in first.stdout
    assert "set-up ready in" in first.stdout and "pip chatter" not in first.stdout
    start = time.perf_counter()
    again = _setup(venv)
    assert time.perf_counter() - start < 1.0
    assert again.stdout.strip() == ("set-up: " + str(venv) + " is ready (pe-dense[dev], torch "
                                    "2.14.1); nothing to do")
    assert "installing pe-dense[demo]" in _setup(venv, "demo").stdout  # another extra: set up


def test_setup_failure_shows_the_log(tmp_path):
    result = _setup(_fake_venv(tmp_path, fail_on="-e"))
    assert result.returncode == 1
    assert "set-up failed while installing pe-dense[dev]" in result.stderr
    assert "ERROR: no matching distribution" in result.stderr


# ----------------------------------------------------------------------------- point 6

def test_our_deprecation_warnings_are_errors_third_party_ones_filtered():
    ours = compile("import warnings\nwarnings.warn('old API', DeprecationWarning)",
                   "pe_dense/old.py", "exec")
    with pytest.raises(DeprecationWarning, match="old API"):
        exec(ours, {"__name__": "pe_dense.old"})
    theirs = compile("import warnings\nwarnings.warn('np.bool', DeprecationWarning)",
                     "pycocotools/coco.py", "exec")
    with warnings.catch_warnings(record=True) as seen:
        exec(theirs, {"__name__": "pycocotools.coco"})
    assert not seen
    with pytest.warns(UserWarning, match="ours"):  # our other warnings stay visible
        exec(compile("import warnings\nwarnings.warn('ours')", "pe_dense/x.py", "exec"),
             {"__name__": "pe_dense.x"})
