"""A training run a person can follow (issue 26): one screen of output, checkpoints that follow
the run (shortened runs keep theirs; test and --resume accept it), checkpoint messages that say
what a file is and the next step, and faults during training (non-finite loss, unreadable
training image, failed checkpoint write) stopped with a short message."""

from __future__ import annotations

import contextlib
import errno
import io
import json
import shutil
from pathlib import Path

import pytest
import torch
from mmengine.config import Config
from mmengine.model import BaseModel
from torch.utils.data import Dataset

import pe_dense
from pe_dense.backbone.checkpoints import inspect_checkpoint
from pe_dense.backbone.weights import CheckpointError, WeightLoadError
from pe_dense.cli import main
from pe_dense.engine import runner as engine
from pe_dense.engine.faults import CheckpointWriteError, NonFiniteLossError
from pe_dense.engine.registry import DATASETS, MODELS

ROOT = Path(__file__).resolve().parents[1]
MAX_LINES = 15  # every message


def _run(argv: list[str]) -> tuple[int, list[str]]:
    """``pe-dense ARGV`` in this process: (exit code, every line printed to stdout and stderr)."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        code = main(argv)
    return code, out.getvalue().splitlines()


def _short(lines: list[str]) -> None:
    assert 0 < len(lines) <= MAX_LINES, lines
    assert not any("Traceback" in line or 'File "' in line for line in lines), lines


@pytest.fixture(scope="module")
def tiny_cfg(shapes, tmp_path_factory) -> Path:
    """The PE-Test shapes detector on the 64 px shapes set, logging every 10 iterations."""
    path = tmp_path_factory.mktemp("cfg") / "tiny_det.py"
    path.write_text(f"""
_base_ = ["{ROOT}/configs/det/mask_rcnn_pe_test_shapes_tiny.py"]
data_root = "{shapes}/"
train_dataloader = dict(dataset=dict(ann_file=data_root + "annotations/instances_train.json",
                                     img_dir=data_root + "train"))
val_dataloader = dict(dataset=dict(ann_file=data_root + "annotations/instances_val.json",
                                   img_dir=data_root + "val"))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + "annotations/instances_val.json")
test_evaluator = val_evaluator
train_cfg = dict(val_interval=15)
default_hooks = dict(logger=dict(interval=10))
""")
    return path


@pytest.fixture(scope="module")
def short_run(tiny_cfg, tmp_path_factory) -> tuple[Path, list[str]]:
    """``pe-dense train`` shortened to 30 iterations with a checkpoint interval of 350 and
    save_last=False: (work dir, printed lines)."""
    work = tmp_path_factory.mktemp("run")
    code, lines = _run(["train", str(tiny_cfg), "--work-dir", str(work), "--cfg-options",
                        "train_cfg.max_iters=30", "default_hooks.checkpoint.interval=350",
                        "default_hooks.checkpoint.save_last=False"])
    assert code == 0, "\n".join(lines)
    return work, lines


# ----------------------------------------------------------------------------- one screen

def test_a_30_iteration_run_prints_one_screen(short_run):
    work, lines = short_run
    text = "\n".join(lines)
    assert len(lines) <= 40, f"{len(lines)} lines:\n{text}"
    assert lines[0].startswith("tiny_det.py: MaskRCNN with PE-Test at 64 px, ")
    assert "parameters on cpu" in lines[0]
    assert lines[1].startswith(f"work dir {work}; full log {work}/")
    assert lines[2].startswith("data: 8 training images, batch 2, 4 validation images; "
                               "30 iterations, evaluation every 15")
    assert [line.split()[1] for line in lines if line.startswith("iter ")] == [
        "10/30", "20/30", "30/30"]
    assert any(line.startswith("evaluation at iteration 15 (4 images): coco/bbox_AP ")
               for line in lines)
    assert any(line.split()[:7] == ["AP", "AP50", "AP75", "APs", "APm", "APl"][:7]
               for line in lines)
    assert any(line.startswith("  coco/bbox ") for line in lines)
    assert any(line.startswith("done: 30 iterations in ") for line in lines)
    assert any(line.startswith("best coco/bbox_AP ") for line in lines)
    assert lines[-1].startswith("full log: ")
    for noise in ("System environment", "Config:", "Hooks will be executed",
                  "Failed to search registry", "FileClient", "mmengine - INFO"):
        assert noise not in text, noise
    log = Path(lines[-1].removeprefix("full log: ")).read_text()
    for kept in ("System environment", "Hooks will be executed", "max_iters", "Iter(train)"):
        assert kept in log, kept  # everything is in the log file


def test_verbose_keeps_mmengine_output(tiny_cfg, tmp_path):
    code, lines = _run(["--verbose", "train", str(tiny_cfg), "--work-dir", str(tmp_path),
                        "--cfg-options", "train_cfg.max_iters=1"])
    assert code == 0
    text = "\n".join(lines)
    assert "System environment" in text and "Hooks will be executed" in text
    assert "Failed to search registry" not in text


# ----------------------------------------------------------------------------- checkpoints

def test_a_shortened_run_keeps_its_checkpoint_for_test_and_resume(short_run, tiny_cfg):
    work, lines = short_run
    ckpt = work / "iter_30.pth"
    assert ckpt.is_file(), sorted(p.name for p in work.iterdir())
    assert (work / "last_checkpoint").read_text().strip() == str(ckpt)
    assert f"checkpoint {ckpt}" in lines
    assert f"evaluate: pe-dense test {tiny_cfg} {ckpt}" in lines
    # the run's config copy (what the checkpoint messages suggest) works as well
    code, out = _run(["test", str(work / "tiny_det.py"), str(ckpt), "--work-dir",
                      str(work / "eval")])
    assert code == 0, "\n".join(out)
    assert len(out) <= 15 and out[0].startswith("tiny_det.py: MaskRCNN with PE-Test at 64 px")
    assert "coco/bbox_AP" in json.loads((work / "eval" / "metrics.json").read_text())["metrics"]
    code, out = _run(["train", str(tiny_cfg), "--work-dir", str(work), "--resume",
                      "--cfg-options", "train_cfg.max_iters=32"])
    assert code == 0, "\n".join(out)
    assert (f"resumed from {ckpt} at iteration 30 (the data loader first skips the 30 batches "
            "already trained on)") in out
    assert [line.split()[1] for line in out if line.startswith("iter ")] == ["32/32"]
    assert (work / "iter_32.pth").is_file()


def test_resume_without_a_checkpoint_says_so(tiny_cfg, tmp_path):
    code, out = _run(["train", str(tiny_cfg), "--work-dir", str(tmp_path), "--resume",
                      "--cfg-options", "train_cfg.max_iters=1"])
    assert code == 0
    assert f"--resume: no checkpoint in {tmp_path}; starting at iteration 0" in out


# ----------------------------------------------------------------------------- messages

def test_image_given_as_weights(tmp_path):
    from PIL import Image

    jpeg = tmp_path / "cat.jpg"
    Image.new("RGB", (8, 8)).save(jpeg)
    with pytest.raises(CheckpointError) as err:
        pe_dense.create_backbone("PE-Test", weights=jpeg)
    lines = str(err.value).splitlines()
    _short(lines)
    assert lines[0] == f"{jpeg} is a JPEG image, not a checkpoint"
    assert lines[1].startswith("fix: pass a PE backbone checkpoint (.pt/.pth/.safetensors")
    assert "weights_only" not in str(err.value) and "Re-running" not in str(err.value)


def test_training_checkpoint_given_as_weights_loads_its_backbone(short_run):
    work, _ = short_run
    backbone = pe_dense.create_backbone("PE-Test", weights=work / "iter_30.pth")
    saved = inspect_checkpoint(work / "iter_30.pth").obj["state_dict"]
    assert torch.equal(backbone.conv1.weight, saved["pyramid.backbone.conv1.weight"])


def test_what_a_training_checkpoint_is(short_run):
    work, _ = short_run
    info = inspect_checkpoint(work / "iter_30.pth")
    assert info.kind == "training" and info.iteration == 30
    assert info.what == "a pe-dense training checkpoint of a MaskRCNN with PE-Test at 64 px " \
                        "(iteration 30)"
    assert info.config_file == work / "tiny_det.py"  # the run's copy of its config
    assert "message_hub" in info.obj  # read without unpickling mmengine's objects


@pytest.mark.parametrize("layout", ["official", "timm", "detectron2", "sharded", "html", "empty"])
def test_what_a_file_is(layout, tmp_path):
    from pe_dense.backbone.layouts import official_to_detectron2, official_to_timm

    sd = pe_dense.create_backbone("PE-Test").state_dict()
    path = tmp_path / "file.pt"
    if layout == "official":
        torch.save(sd, path)
    elif layout == "timm":
        torch.save(official_to_timm(sd), path)
    elif layout == "detectron2":
        torch.save(official_to_detectron2(sd), path)
    elif layout == "sharded":
        import warnings

        import torch.distributed.checkpoint as dcp

        path = tmp_path / "iter_8.pth"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "assuming ... a single process"
            dcp.save({"backbone." + k: v for k, v in sd.items()},
                     checkpoint_id=str(path / "model"))
    elif layout == "html":
        path.write_text("<!DOCTYPE html><html>404 Not Found</html>")
    else:
        path.write_bytes(b"")
    what = {"official": "a PE backbone state dict (official layout) of PE-Test at 64 px",
            "timm": "a PE backbone state dict (timm / Hugging Face layout) of PE-Test at 64 px",
            "detectron2": "a PE backbone state dict (detectron2 / official detection layout) "
                          "of PE-Test at 64 px",
            "sharded": "a sharded (FSDP) training checkpoint of a task model with PE-Test at "
                       "64 px",
            "html": "an HTML/XML page (a failed download?)",
            "empty": "an empty file (0 bytes)"}[layout]
    assert inspect_checkpoint(path).what == what


def test_truncated_checkpoint_in_test(short_run, tiny_cfg, tmp_path):
    work, _ = short_run
    data = (work / "iter_30.pth").read_bytes()
    cut = tmp_path / "cut.pth"
    cut.write_bytes(data[: len(data) // 2])
    code, lines = _run(["test", str(tiny_cfg), str(cut), "--work-dir", str(tmp_path)])
    assert code == 2
    _short(lines)
    assert lines[0].startswith(f"pe-dense test: error: {cut} is a truncated PyTorch file (")
    assert "mmengine" not in "\n".join(lines)


def test_backbone_checkpoint_in_test(tiny_cfg, tmp_path):
    ckpt = tmp_path / "pe_test.pt"
    torch.save(pe_dense.create_backbone("PE-Test").state_dict(), ckpt)
    code, lines = _run(["test", str(tiny_cfg), str(ckpt), "--work-dir", str(tmp_path)])
    assert code == 2
    _short(lines)
    assert lines[0] == (f"pe-dense test: error: {ckpt} is a PE backbone state dict (official "
                        "layout) of PE-Test at 64 px")
    assert lines[1] == (f"fix: pe-dense test needs a checkpoint of the whole model written by "
                        f"pe-dense train; to train from this backbone: pe-dense train "
                        f"{tiny_cfg} --cfg-options model.backbone.weights={ckpt}")
    assert "training checkpoint" not in lines[0]


def test_detector_checkpoint_with_a_depth_config(short_run):
    from pe_dense.engine.build import load_model

    work, _ = short_run
    config = ROOT / "configs/depth/dpt_pe-spatial-t16_nyu-mini_cpu.py"
    with pytest.raises(CheckpointError) as err:
        load_model(config, work / "iter_30.pth", device="cpu")
    lines = str(err.value).splitlines()
    _short(lines)
    assert lines[0] == (f"{work}/iter_30.pth is a pe-dense training checkpoint of a MaskRCNN "
                        f"with PE-Test at 64 px (iteration 30), but {config} builds a "
                        "DepthEstimator")
    assert lines[1] == (f"fix: evaluate it with the config it was trained with: pe-dense test "
                        f"{work}/tiny_det.py {work}/iter_30.pth (its backbone is PE-Test, "
                        f"{config} builds PE-Spatial-T16-512)")
    assert "PEViT with width" not in str(err.value)


def test_checkpoint_of_another_backbone_size(short_run):
    from pe_dense.engine.build import load_model

    work, _ = short_run
    config = ROOT / "configs/det/mask_rcnn_pe_test_coco_tiny_overfit.py"  # PE-Test at 256 px
    with pytest.raises(WeightLoadError) as err:
        load_model(config, work / "iter_30.pth", device="cpu")
    lines = str(err.value).splitlines()
    _short(lines)
    assert lines[0].startswith(f"{work}/iter_30.pth is a pe-dense training checkpoint of a "
                               "MaskRCNN with PE-Test at 64 px (iteration 30) and does not fit "
                               "the MaskRCNN built from")
    assert "model pyramid.backbone: PE-Test at 256 px - width 64" in str(err.value)
    assert "fix: build the model with image_size=64" in str(err.value)


def test_missing_checkpoint_names_what_is_there(short_run, tiny_cfg):
    work, _ = short_run
    code, lines = _run(["test", str(tiny_cfg), str(work / "iter_3.pth")])
    assert code == 2
    _short(lines)
    assert lines[0].startswith(f"pe-dense test: error: checkpoint {work}/iter_3.pth does not "
                               f"exist; {work} has ")
    assert "iter_30.pth" in lines[0]


def test_a_work_dir_given_as_checkpoint(short_run, tiny_cfg):
    work, _ = short_run
    code, lines = _run(["test", str(tiny_cfg), str(work)])
    assert code == 2
    _short(lines)
    assert f"{work} is a folder (a work dir: its newest checkpoint is {work}/" in lines[0]


# ----------------------------------------------------------------------------- faults

@MODELS.register_module(force=True)
class FaultyToy(BaseModel):
    """y = w x + b; the loss is NaN on the calls listed in ``nan_at`` (1-based)."""

    def __init__(self, nan_at: tuple[int, ...] = ()) -> None:
        super().__init__()
        self.linear = torch.nn.Linear(1, 1)
        self.nan_at, self.calls = set(nan_at), 0

    def forward(self, inputs, data_samples=None, mode="tensor"):
        out = self.linear(inputs)[:, 0]
        if mode == "loss":
            self.calls += 1
            loss = ((out - data_samples) ** 2).mean()
            return {"loss_mse": loss * float("nan") if self.calls in self.nan_at else loss,
                    "loss_reg": 0.0 * loss}
        return out


@DATASETS.register_module(force=True)
class ToyPoints(Dataset):
    def __init__(self, n: int = 8) -> None:
        self.x = torch.linspace(-1, 1, n)[:, None]

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i):
        return {"inputs": self.x[i], "data_samples": 2 * self.x[i, 0] + 1}


def _toy(max_iters: int = 6, nan_at: tuple[int, ...] = (), **train: object) -> Config:
    loader = dict(batch_size=4, num_workers=0, dataset=dict(type="ToyPoints"),
                  collate_fn=dict(type="default_collate"),
                  sampler=dict(type="InfiniteSampler", shuffle=False))
    return Config(dict(
        default_scope="pe_dense", model=dict(type="FaultyToy", nan_at=nan_at),
        train_dataloader=loader,
        train_cfg=dict(type="IterBasedTrainLoop", max_iters=max_iters, **train),
        optim_wrapper=dict(optimizer=dict(type="SGD", lr=0.1)),
        default_hooks=dict(checkpoint=dict(type="CheckpointHook", by_epoch=False, interval=2,
                                           max_keep_ckpts=1),
                           logger=dict(type="LoggerHook", interval=1)),
        log_processor=dict(by_epoch=False), randomness=dict(seed=0)))


def test_nan_loss_stops_with_iteration_terms_and_last_checkpoint(tmp_path):
    with pytest.raises(NonFiniteLossError) as err:
        engine.train(_toy(nan_at=(5,)), work_dir=tmp_path, verbose=False)
    lines = str(err.value).splitlines()
    _short(lines)
    assert lines[0] == (f"iteration 5: the loss is not finite (loss_mse=nan); the last good "
                        f"checkpoint is {tmp_path}/iter_4.pth (the weights were not updated "
                        "with this batch); continue from it with --resume")
    assert "train_cfg.skip_nonfinite=True" in lines[1]
    assert (tmp_path / "iter_4.pth").is_file()


def test_skip_nonfinite_skips_and_counts(tmp_path):
    runner = engine.build_runner(_toy(nan_at=(2, 5), skip_nonfinite=True), work_dir=tmp_path,
                                 verbose=False)
    out = io.StringIO()
    for handler in runner.logger.handlers:
        if not hasattr(handler, "baseFilename"):
            handler.setStream(out)
    runner.train()
    assert runner.nonfinite_iters == [2, 5] and runner.iter == 6
    assert all(torch.isfinite(p).all() for p in runner.model.parameters())
    assert ("skipped 2 batch(es) with a non-finite loss (skip_nonfinite): iterations 2, 5"
            in out.getvalue())


def test_failed_checkpoint_write_keeps_the_previous_one(tmp_path, monkeypatch):
    from mmengine.fileio.backends import LocalBackend

    put = LocalBackend.put
    calls = []

    def disk_full(self, obj, filepath):
        calls.append(filepath)
        if len(calls) == 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        return put(self, obj, filepath)

    monkeypatch.setattr(LocalBackend, "put", disk_full)
    with pytest.raises(CheckpointWriteError) as err:
        engine.train(_toy(), work_dir=tmp_path, verbose=False)
    lines = str(err.value).splitlines()
    _short(lines)
    assert lines[0] == (f"could not write checkpoint {tmp_path}/iter_4.pth (No space left on "
                        f"device); nothing was replaced: the previous checkpoint "
                        f"{tmp_path}/iter_2.pth is intact")
    assert "--resume" in lines[1]
    assert (tmp_path / "iter_2.pth").is_file()  # max_keep_ckpts=1 did not remove it first
    assert inspect_checkpoint(tmp_path / "iter_2.pth").kind == "training"
    assert sorted(p.name for p in tmp_path.glob("*.pth")) == ["iter_2.pth"]
    assert not list(tmp_path.glob(".*tmp*"))
    monkeypatch.setattr(LocalBackend, "put", put)
    runner = engine.train(_toy(), work_dir=tmp_path, resume=True, verbose=False)
    assert runner.resumed_from.endswith("iter_2.pth") and runner.iter == 6


@pytest.fixture
def corrupt_shapes(shapes, tmp_path) -> Path:
    root = tmp_path / "shapes"
    shutil.copytree(shapes, root)
    victim = sorted((root / "train").iterdir())[0]
    victim.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    return root


def test_corrupt_training_image_is_named(tiny_cfg, corrupt_shapes, tmp_path):
    images = corrupt_shapes / "train"
    args = ["train", str(tiny_cfg), "--work-dir", str(tmp_path / "w"), "--cfg-options",
            "train_cfg.max_iters=2", f"train_dataloader.dataset.img_dir={images}",
            "train_dataloader.num_workers=1", "val_cfg=None", "val_dataloader=None",
            "val_evaluator=None"]
    code, lines = _run(args)  # read in a DataLoader worker process
    assert code == 2
    _short(lines)
    error = next(line for line in lines if line.startswith("pe-dense train: error: "))
    victim = sorted(images.iterdir())[0]
    assert error.startswith("pe-dense train: error: training sample ")
    assert f"cannot be read: image {victim}: " in error
    assert any(line.startswith("fix: replace or remove the file, or set "
                               "train_cfg.skip_bad_samples=True") for line in lines)
    args[args.index("train_dataloader.num_workers=1")] = "train_dataloader.num_workers=0"
    code, lines = _run([*args, "train_cfg.skip_bad_samples=True"])
    assert code == 0, "\n".join(lines)
    assert any(line.startswith("skipped ") and "training sample(s) that could not be read"
               in line for line in lines), lines


# ----------------------------------------------------------------------------- config checks

def _config_error(tiny_cfg: Path, tmp_path: Path, body: str, *options: str) -> list[str]:
    """``pe-dense train`` of a config inheriting the tiny one: the printed lines of its error
    (which must be all that was printed, exit code 2)."""
    path = tmp_path / "bad.py"
    path.write_text(f'_base_ = ["{tiny_cfg}"]\n{body}')
    args = ["train", str(path), "--work-dir", str(tmp_path / "w")]
    code, lines = _run(args + (["--cfg-options", *options] if options else []))
    assert code == 2, "\n".join(lines)
    _short(lines)
    assert lines[0].startswith("pe-dense train: error: "), lines  # before any engine output
    return lines


def test_config_key_typos_variant_and_data_path_in_one_message(tiny_cfg, tmp_path):
    lines = _config_error(tiny_cfg, tmp_path, (
        'model = dict(backbone=dict(name="PE-Tset"))\n'
        'train_dataloader = dict(batch_sise=2, dataset=dict(filter_emty=True, '
        'img_dir="/no/such/images"))\n'
        'default_hooks = dict(checkpoint=dict(intervl=3))\n'))
    assert lines[0] == f"pe-dense train: error: {tmp_path}/bad.py: 5 problems, nothing was run:"
    assert set(lines[1:6]) == {
        "  train_dataloader.batch_sise: not an option of DataLoader; did you mean batch_size?",
        "  train_dataloader.dataset.filter_emty: not an option of CocoDetection; did you mean "
        "filter_empty?",
        "  default_hooks.checkpoint.intervl: not an option of CheckpointHook; did you mean "
        "interval?",
        "  model.backbone.name='PE-Tset': no such PE variant; did you mean PE-Test?",
        "  train_dataloader.dataset.img_dir: /no/such/images does not exist"}
    assert lines[6] == "fix: edit the config, or override with --cfg-options KEY=VALUE"
    assert not (tmp_path / "w").exists()  # nothing was run


def test_missing_data_root_names_the_key(tiny_cfg, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    lines = _config_error(tiny_cfg, tmp_path, "", "train_dataloader.dataset.ann_file="
                          "data/coco/annotations/instances_train2017.json")
    assert ("  train_dataloader.dataset.ann_file: data/coco/annotations/instances_train2017.json"
            f" does not exist (relative paths start at {tmp_path})") in lines


def test_cfg_option_of_the_wrong_type(tiny_cfg, tmp_path):
    lines = _config_error(tiny_cfg, tmp_path, "", "train_cfg.max_iters=abc")
    assert lines == ["pe-dense train: error: --cfg-options train_cfg.max_iters='abc': expected "
                     "an integer (the config has 2)"]


def test_config_value_of_the_wrong_type(tiny_cfg, tmp_path):
    lines = _config_error(tiny_cfg, tmp_path, 'train_cfg = dict(max_iters="30")\n')
    assert "  train_cfg.max_iters='30': IterBasedTrainLoop expects an int" in lines


def test_config_syntax_error_names_file_and_line(tiny_cfg, tmp_path):
    lines = _config_error(tiny_cfg, tmp_path, 'model = dict(\n    backbone=dict(name="PE-Test",\n'
                                              ')\n')
    assert lines[0] == (f"pe-dense train: error: config {tmp_path}/bad.py, line 2: syntax "
                        "error: '(' was never closed")
    assert lines[1] == "    model = dict("
    assert "<unknown>" not in "\n".join(lines)


def test_nested_model_typo_is_a_config_error(tiny_cfg, tmp_path):
    lines = _config_error(tiny_cfg, tmp_path, "model = dict(rpn=dict(conv_dept=1))\n")
    assert lines[0].startswith(f"pe-dense train: error: {tmp_path}/bad.py: model: ")
    assert "conv_dept" in lines[0]


def test_missing_backbone_weights_file(tiny_cfg, tmp_path):
    (tmp_path / "cat.jpg").write_bytes(b"\xff\xd8\xff\xe0 jpeg")
    lines = _config_error(tiny_cfg, tmp_path, "", f"model.backbone.weights={tmp_path}/cat.jpg")
    assert (f"  model.backbone.weights: {tmp_path}/cat.jpg is a JPEG image, not a checkpoint; "
            "pass a PE backbone checkpoint (.pt/.pth/.safetensors, or hf://facebook/NAME)"
            in lines)


# ----------------------------------------------------------------------------- shared options

# The commands on pe_dense.cli.options so far (predict, features and demo move to it with the
# lead's rewrite; newer commands as they are written).
_SHARED = ("train", "test", "distill", "distill-cache", "distill-eval", "track", "classify",
           "segment-text", "benchmark", "export", "features", "predict")


def test_shared_options_have_one_default_and_one_help():
    from pe_dense.cli.main import build_parser

    seen: dict[str, set] = {}
    for name in _SHARED:
        parser = build_parser([name])
        sub = next(a for a in parser._actions if a.dest == "command").choices[name]
        # own meanings: benchmark's --runtime/--model are comma lists; segment-text's --model
        # and --weights default to what its --bridge file recorded
        own = {"benchmark": {"--runtime", "--model"}, "segment-text": {"--model", "--weights"},
               "export": {"--out"}}.get(name, set())
        for action in sub._actions:
            for flag in ("--device", "--cfg-options", "--weights", "--work-dir", "--launcher",
                         "--runtime", "--verbose"):
                if flag in action.option_strings and flag not in own:
                    seen.setdefault(flag, set()).add((repr(action.default), action.help))
            if "--model" in action.option_strings and "--model" not in own:
                family = "clip" if "Core" in action.default else "dense"  # two defaults
                seen.setdefault(f"--model ({family})", set()).add(action.help)
            if "--out" in action.option_strings and "--out" not in own:
                seen.setdefault("--out", set()).add(action.help.split(" (default")[0])
    assert {flag: len(kinds) for flag, kinds in seen.items()} == {
        flag: 1 for flag in ("--device", "--cfg-options", "--weights", "--work-dir", "--launcher",
                             "--runtime", "--verbose", "--model (dense)", "--model (clip)",
                             "--out")}, seen
    assert seen["--device"] == {("'auto'", "auto (default: CUDA when available, else cpu), cpu, "
                                           "cuda, cuda:1")}


def test_verbose_after_the_command(tiny_cfg, tmp_path):
    code, lines = _run(["train", str(tiny_cfg), "--work-dir", str(tmp_path), "--verbose",
                        "--cfg-options", "train_cfg.max_iters=1"])
    assert code == 0 and "System environment" in "\n".join(lines)
