"""FSDP (torch FSDP2 through the mmengine Runner) against DDP with 2 CPU processes (gloo, torchrun):
a tiny detector and a tiny distillation student give the same losses and weights; a sharded
run killed after a checkpoint resumes with the same losses; sharded checkpoints consolidate into
plain ones that `pe-dense test`, `load_model_weights` and `create_backbone` read.

Each torchrun launch takes 10-30 s on two CPU threads, so the end-to-end tests are marked slow:
    OMP_NUM_THREADS=1 .venv/bin/python -m pytest -q -m slow tests/test_fsdp.py
"""

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

from pe_dense import create_backbone
from pe_dense.engine.fsdp import check_strategy, consolidate, fsdp_options, is_sharded_checkpoint
from pe_dense.engine.runner import ConfigError, build_runner, read_training_checkpoint

ROOT = Path(__file__).resolve().parents[1]
TINY_DET = ROOT / "configs/det/mask_rcnn_pe_test_shapes_tiny.py"
STEPS = 5

DISTILL_CONFIG = """
default_scope = "pe_dense"
model = dict(type="DistillModel",
             student=dict(model="PE-Test", drop_path=0.1, ls_init_value=0.1),
             teachers=[dict(name="pe", kind="pe_layer", model="PE-Test", layer=2, seed=1,
                            project=True, losses=dict(cosine=1.0, locality=0.5))],
             crop_size=48, mask=dict(ratio=0.75, block=2))
train_dataloader = dict(batch_size=2, num_workers=0,
                        sampler=dict(type="InfiniteSampler", shuffle=True),
                        collate_fn=dict(type="default_collate"),
                        dataset=dict(type="DistillImageDataset", roots={images!r}, image_size=64))
train_cfg = dict(type="IterBasedTrainLoop", max_iters={steps})
optim_wrapper = dict(optimizer=dict(type="Lamb", lr=1e-3, betas=(0.9, 0.95), weight_decay=0.05),
                     clip_grad=dict(max_norm=1.0))
param_scheduler = [dict(type="LinearLR", start_factor=0.5, by_epoch=False, begin=0, end=2),
                   dict(type="CosineAnnealingLR", by_epoch=False, begin=2, end={steps})]
default_hooks = dict(checkpoint=dict(type="CheckpointHook", by_epoch=False, interval=3),
                     logger=dict(type="LoggerHook", interval=1))
custom_hooks = [dict(type="ExportStudentHook")]
log_processor = dict(by_epoch=False, window_size=1)
randomness = dict(seed=0)
"""

# Appended to a config: kill every process right after the checkpoint of iteration 3.
KILL = """
custom_imports = dict(imports=["fsdp_kill_hook"], allow_failed_imports=False)
custom_hooks = custom_hooks + [dict(type="KillAfterIter", at=3)]
"""


# ----------------------------------------------------------------------------- helpers

def _torchrun(command: str, config: Path, work: Path, port: int, *args: str) -> str:
    """`torchrun --nproc_per_node 2 tools/<command>.py CONFIG --launcher pytorch ...`; the log."""
    env = dict(os.environ, OMP_NUM_THREADS="1",
               PYTHONPATH=os.pathsep.join([str(ROOT / "tests"), os.environ.get("PYTHONPATH", "")]))
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
           "--master_port", str(port), str(ROOT / f"tools/{command}.py"), str(config),
           "--launcher", "pytorch", "--work-dir", str(work), *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=ROOT, env=env)
    (work / "torchrun.log").parent.mkdir(parents=True, exist_ok=True)
    (work / "torchrun.log").write_text(proc.stdout + proc.stderr)
    if proc.returncode != 0 and "KillAfterIter" not in config.read_text():
        raise AssertionError(f"torchrun failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    return proc.stdout + proc.stderr


def _losses(work: Path) -> dict[int, float]:
    """iteration -> rank 0's logged loss, over every run (resumes too) in ``work``."""
    out: dict[int, float] = {}
    for scalars in sorted(work.glob("*/vis_data/scalars.json")):
        for line in scalars.read_text().splitlines():
            row = json.loads(line)
            if "loss" in row:
                out[row["iter"]] = row["loss"]
    return out


def _assert_same_losses(a: dict[int, float], b: dict[int, float]) -> None:
    assert sorted(a) == sorted(b) == list(range(1, STEPS + 1)), (a, b)
    for step in a:
        assert a[step] == pytest.approx(b[step], rel=1e-5, abs=1e-6), (step, a, b)


def _assert_same_weights(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert set(a) == set(b)
    for key in a:
        assert torch.allclose(a[key].float(), b[key].float(), rtol=1e-5, atol=1e-6), key


def _det_config(folder: Path, shapes: Path, kill: bool = False) -> Path:
    ann = shapes / "annotations"
    text = (f"_base_ = [{str(TINY_DET)!r}]\n"
            f"train_dataloader = dict(dataset=dict(ann_file={str(ann / 'instances_train.json')!r},"
            f" img_dir={str(shapes / 'train')!r}))\n"
            f"val_dataloader = dict(dataset=dict(ann_file={str(ann / 'instances_val.json')!r},"
            f" img_dir={str(shapes / 'val')!r}))\n"
            "test_dataloader = val_dataloader\n"
            f"val_evaluator = dict(ann_file={str(ann / 'instances_val.json')!r})\n"
            "test_evaluator = val_evaluator\n"
            f"train_cfg = dict(max_iters={STEPS}, val_interval=100)\n"
            "default_hooks = dict(checkpoint=dict(interval=3))\n"
            "log_processor = dict(window_size=1)\n"
            "custom_hooks = []\n")
    path = folder / ("det_kill.py" if kill else "det.py")
    path.write_text(text + (KILL if kill else ""))
    return path


def _distill_config(folder: Path, kill: bool = False) -> Path:
    images = folder / "images"
    if not images.is_dir():
        images.mkdir(parents=True)
        rng = np.random.default_rng(0)
        for i in range(6):
            Image.fromarray(rng.integers(0, 255, (40 + 4 * i, 56, 3), dtype=np.uint8)).save(
                images / f"{i}.png")
    path = folder / ("distill_kill.py" if kill else "distill.py")
    path.write_text(DISTILL_CONFIG.format(images=str(images), steps=STEPS) + (KILL if kill else ""))
    return path


# ----------------------------------------------------------------------------- fast checks

def test_strategy_block_checks():
    assert check_strategy("fsdp") == {"type": "fsdp", "grad_checkpointing": False}
    assert check_strategy(None)["type"] == "ddp"
    with pytest.raises(ValueError, match="not supported"):
        check_strategy("zero3")
    with pytest.raises(ValueError, match="unknown keys"):
        check_strategy(dict(type="fsdp", ofload=True))
    cpu = fsdp_options(dict(type="fsdp", mixed_precision="bf16"), cuda=False)
    assert cpu["param_dtype"] is None and cpu["reduce_dtype"] is None  # float32 on the CPU
    gpu = fsdp_options(dict(type="fsdp"), cuda=True)
    assert gpu["param_dtype"] == gpu["reduce_dtype"] == "bf16" and gpu["device_type"] == "cuda"


def test_fsdp_without_torchrun_is_a_clear_error(tmp_path):
    cfg = _distill_config(tmp_path)
    with pytest.raises(ConfigError, match="torchrun"):
        build_runner(cfg, work_dir=tmp_path / "w", strategy="fsdp")
    with pytest.raises(ConfigError, match="needs --strategy fsdp"):
        build_runner(cfg, work_dir=tmp_path / "w", offload=True)


def test_fsdp_replaces_amp_optim_wrapper(tmp_path):
    from pe_dense.engine.runner import _set_strategy, load_config

    cfg = load_config(_distill_config(tmp_path), {"optim_wrapper.type": "AmpOptimWrapper",
                                                  "optim_wrapper.dtype": "bfloat16"})
    _set_strategy(cfg, "fsdp", grad_checkpointing=True, offload=False)
    assert cfg.optim_wrapper.type == "OptimWrapper" and "dtype" not in cfg.optim_wrapper
    assert cfg.strategy == {"type": "fsdp", "grad_checkpointing": True}


def test_grad_checkpointing_flag_reaches_every_pevit(tmp_path):
    runner = build_runner(_distill_config(tmp_path), work_dir=tmp_path / "w",
                          grad_checkpointing=True)
    assert runner.model.student.grad_checkpointing
    assert runner.cfg.strategy == {"type": "ddp", "grad_checkpointing": True}


# ----------------------------------------------------------------------------- torchrun

@pytest.mark.slow
def test_detector_fsdp_equals_ddp_and_resumes_after_kill(shapes, tmp_path):
    config = _det_config(tmp_path, shapes)
    _torchrun("train", config, tmp_path / "ddp", 29661, "--strategy", "ddp")
    log = _torchrun("train", config, tmp_path / "fsdp", 29662, "--strategy", "fsdp",
                    "--grad-checkpointing")
    assert "FSDP: 4 block units + root over 2 ranks" in log  # PE-Test: 4 blocks
    _assert_same_losses(_losses(tmp_path / "ddp"), _losses(tmp_path / "fsdp"))
    sharded = tmp_path / "fsdp" / f"iter_{STEPS}.pth"
    assert is_sharded_checkpoint(sharded) and (sharded / "optim" / ".metadata").is_file()
    ddp_weights = read_training_checkpoint(tmp_path / "ddp" / f"iter_{STEPS}.pth")
    _assert_same_weights(ddp_weights, read_training_checkpoint(sharded))

    # A killed sharded run resumes from its iteration-3 folder. The detector draws on the global
    # RNG (augmentation, RPN/ROI sampling), which mmengine does not checkpoint, so the resumed
    # iterations are compared with a DDP run killed and resumed the same way (the distillation
    # test below, whose randomness is seeded per step, compares with the uninterrupted run).
    resumed = {}
    for strategy, port in (("fsdp", 29663), ("ddp", 29665)):
        killed = tmp_path / f"killed_{strategy}"
        _torchrun("train", _det_config(tmp_path, shapes, kill=True), killed, port,
                  "--strategy", strategy, "--grad-checkpointing")
        assert sorted(_losses(killed)) == [1, 2, 3] and not (killed / "iter_5.pth").exists()
        assert (killed / "last_checkpoint").read_text().strip().endswith("iter_3.pth")
        _torchrun("train", config, killed, port + 1, "--strategy", strategy,
                  "--grad-checkpointing", "--resume")
        resumed[strategy] = killed
    _assert_same_losses(_losses(resumed["ddp"]), _losses(resumed["fsdp"]))
    first_three = list(_losses(tmp_path / "fsdp").values())[:3]
    assert list(_losses(resumed["fsdp"]).values())[:3] == first_three
    _assert_same_weights(read_training_checkpoint(resumed["ddp"] / f"iter_{STEPS}.pth"),
                         read_training_checkpoint(resumed["fsdp"] / f"iter_{STEPS}.pth"))

    # consolidation: pe-dense consolidate -> a plain checkpoint for create_backbone and test
    from pe_dense.cli import main
    from pe_dense.engine.runner import test as run_test

    plain = tmp_path / "consolidated.pth"
    assert main(["consolidate", str(sharded), str(plain)]) == 0
    _assert_same_weights(ddp_weights, read_training_checkpoint(plain))
    # create_backbone takes the backbone part of a detector checkpoint: --prefix
    prefix = next(k for k in ddp_weights if k.endswith("conv1.weight"))[: -len("conv1.weight")]
    assert main(["consolidate", str(sharded), str(tmp_path / "bb.pth"), "--prefix", prefix]) == 0
    backbone = create_backbone("PE-Test", weights=str(tmp_path / "bb.pth"))
    assert torch.equal(backbone.conv1.weight, ddp_weights[prefix + "conv1.weight"])
    metrics = run_test(config, sharded, work_dir=tmp_path / "eval")  # consolidated on the fly
    assert 0.0 <= metrics["coco/bbox_AP50"] <= 1.0


@pytest.mark.slow
def test_distill_student_fsdp_equals_ddp_and_resumes_after_kill(tmp_path):
    config = _distill_config(tmp_path)
    _torchrun("distill", config, tmp_path / "ddp", 29671, "--strategy", "ddp")
    _torchrun("distill", config, tmp_path / "fsdp", 29672, "--strategy", "fsdp")
    _assert_same_losses(_losses(tmp_path / "ddp"), _losses(tmp_path / "fsdp"))
    sharded = tmp_path / "fsdp" / f"iter_{STEPS}.pth"
    _assert_same_weights(read_training_checkpoint(tmp_path / "ddp" / f"iter_{STEPS}.pth"),
                         consolidate(sharded)["state_dict"])
    # the student exported under FSDP (shards gathered) equals the DDP one, loads as a PEViT
    ddp_student = create_backbone("PE-Test", weights=str(tmp_path / "ddp" / "student.pt"))
    fsdp_student = create_backbone("PE-Test", weights=str(tmp_path / "fsdp" / "student.pt"))
    _assert_same_weights(ddp_student.state_dict(), fsdp_student.state_dict())

    killed = tmp_path / "killed"
    _torchrun("distill", _distill_config(tmp_path, kill=True), killed, 29673,
              "--strategy", "fsdp")
    assert sorted(_losses(killed)) == [1, 2, 3] and (killed / "iter_3.pth").is_dir()
    _torchrun("distill", config, killed, 29674, "--strategy", "fsdp", "--resume")
    _assert_same_losses(_losses(tmp_path / "fsdp"), _losses(killed))
    _assert_same_weights(consolidate(sharded)["state_dict"],
                         consolidate(killed / f"iter_{STEPS}.pth")["state_dict"])
