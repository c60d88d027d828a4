"""A task registered from outside pe_dense (tests/toy_task.py: one module, one registration)
gets predict, export (with the runtime) and a demo mode with no other edit."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

pytest.importorskip("mmengine")


@pytest.fixture
def toy(tmp_path):
    import toy_task

    from pe_dense.tasks.description import register_task, unregister_task

    register_task(toy_task.DESCRIPTION, replace=True)
    config = tmp_path / "toy.py"
    config.write_text(toy_task.CONFIG)
    yield toy_task, config
    unregister_task("toy")


def _image(path, h=40, w=56):
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)).save(path)
    return path


def test_registered_task_is_listed_and_looked_up(toy):
    from pe_dense.demo.keys import all_modes, tour_modes
    from pe_dense.engine.registry import task_modules
    from pe_dense.tasks.description import get_task, list_tasks, task_of

    toy_task, _ = toy
    assert "toy" in [d.name for d in list_tasks()] and "toy" in tour_modes()
    assert all_modes()[-1] == "text" and get_task("toy") is toy_task.DESCRIPTION
    assert task_of(toy_task.ToyBrightness(backbone={"name": "PE-Test"})).name == "toy"
    assert "toy_task" in task_modules()
    with pytest.raises(ValueError, match="unknown task 'nope'"):
        get_task("nope")


def test_registered_task_predicts_exports_and_runs_exported(toy, tmp_path):
    pytest.importorskip("onnxruntime")
    from pe_dense.cli import main
    from pe_dense.engine.predictor import Predictor
    from pe_dense.export.api import export_model

    _, config = toy
    model = Predictor(config, device="cpu").model
    ckpt = tmp_path / "toy.pth"
    torch.save({"state_dict": model.state_dict()}, ckpt)
    image = _image(tmp_path / "im.png")
    out = tmp_path / "out"
    assert main(["predict", str(config), str(ckpt), str(image), "--out", str(out),
                 "--workers", "0"]) == 0
    saved = np.load(out / "pred" / "im.npy")
    expected = Predictor(config, ckpt, device="cpu")(image)
    assert saved.shape == (40, 56) and np.allclose(saved, expected)
    assert Image.open(out / "vis" / "im.png").size == (112, 40)
    assert json.loads((out / "summary.json").read_text())["task"] == "toy"

    result = export_model(model, tmp_path / "toy.onnx", resolution=(48, 64), dynamic=True)
    assert result.spec.kind == "toy" and result.spec.outputs == ["brightness"]
    onnx_out = tmp_path / "onnx"
    assert main(["predict", str(config), str(ckpt), str(image), "--out", str(onnx_out),
                 "--workers", "0", "--runtime", "onnxruntime", "--onnx",
                 str(tmp_path / "toy.onnx")]) == 0
    assert np.allclose(np.load(onnx_out / "pred" / "im.npy"), saved, atol=1e-4)


def test_registered_task_gets_a_demo_mode(toy):
    from pe_dense.demo.build import ModelOptions, build_runtime, mode_factory
    from pe_dense.demo.prediction import PredictionMode
    from pe_dense.demo.runtime import StageTimer

    opts = ModelOptions(model="PE-Test", resolution=32, device="cpu")
    runtime, task = build_runtime(opts)
    mode = mode_factory(runtime, opts, task)("toy")
    assert isinstance(mode, PredictionMode) and mode.notes  # random weights, said on screen
    frame = np.random.default_rng(1).integers(0, 255, (60, 80, 3), dtype=np.uint8)
    out = mode.process(frame, StageTimer())
    assert out.shape == frame.shape and out.dtype == np.uint8 and out.any()
