"""pe_dense.engine on a toy regression task: registries, runner, resume, test, config checks,
layer-wise lr decay."""

from __future__ import annotations

import json

import pytest
import torch
from mmengine.config import Config
from mmengine.evaluator import BaseMetric
from mmengine.hooks import Hook
from mmengine.model import BaseModel
from torch.utils.data import Dataset

from pe_dense import create_backbone
from pe_dense.backbone.pe_vit import layer_id
from pe_dense.engine import runner as engine
from pe_dense.engine.optim import param_groups
from pe_dense.engine.registry import DATASETS, HOOKS, METRICS, MODELS
from pe_dense.engine.runner import ConfigError, build_runner, load_config, load_model_weights, train


@MODELS.register_module(force=True)
class ToyRegressor(BaseModel):
    """y = w x + b; 'loss' -> mse, 'predict' -> list of predictions."""

    task = "toy"

    def __init__(self, width: int = 1) -> None:
        super().__init__()
        self.linear = torch.nn.Linear(width, 1)

    def forward(self, inputs, data_samples=None, mode="tensor"):
        out = self.linear(inputs)[:, 0]
        if mode == "loss":
            return {"loss_mse": ((out - data_samples) ** 2).mean()}
        if mode == "predict":
            return list(zip(out.detach(), data_samples, strict=True))
        return out


@DATASETS.register_module(force=True)
class ToyLine(Dataset):
    def __init__(self, n: int = 16) -> None:
        self.x = torch.linspace(-1, 1, n)[:, None]

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i):
        return {"inputs": self.x[i], "data_samples": 2 * self.x[i, 0] + 1}


@METRICS.register_module(force=True)
class ToyError(BaseMetric):
    default_prefix = "toy"

    def __init__(self, outfile_dir: str | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.outfile_dir = outfile_dir

    def process(self, data_batch, data_samples) -> None:
        self.results += [float((p - t) ** 2) for p, t in data_samples]

    def compute_metrics(self, results):
        return {"mse": sum(results) / len(results), "has_dir": float(bool(self.outfile_dir))}


@HOOKS.register_module(force=True)
class RecordFirstIter(Hook):
    seen: list[int] = []

    def before_train(self, runner) -> None:
        RecordFirstIter.seen.append(runner.iter)


def toy_config(max_iters: int = 4) -> Config:
    loader = dict(batch_size=4, num_workers=0, dataset=dict(type="ToyLine"),
                  collate_fn=dict(type="default_collate"))
    return Config(dict(
        default_scope="pe_dense",
        model=dict(type="ToyRegressor"),
        train_dataloader=dict(loader, sampler=dict(type="InfiniteSampler", shuffle=True)),
        val_dataloader=dict(loader, sampler=dict(type="DefaultSampler", shuffle=False)),
        test_dataloader=dict(loader, sampler=dict(type="DefaultSampler", shuffle=False)),
        val_evaluator=dict(type="ToyError"), test_evaluator=dict(type="ToyError"),
        train_cfg=dict(type="IterBasedTrainLoop", max_iters=max_iters, val_interval=max_iters),
        val_cfg=dict(type="ValLoop"), test_cfg=dict(type="TestLoop"),
        optim_wrapper=dict(constructor="LayerDecayOptimWrapperConstructor",
                           optimizer=dict(type="AdamW", lr=0.05, weight_decay=0.0)),
        default_hooks=dict(checkpoint=dict(type="CheckpointHook", by_epoch=False, interval=2),
                           logger=dict(type="LoggerHook", interval=1)),
        custom_hooks=[dict(type="RecordFirstIter")],
        log_processor=dict(by_epoch=False),
        randomness=dict(seed=0),
    ))


def test_train_checkpoints_resume_and_test(tmp_path):
    work = tmp_path / "run"
    RecordFirstIter.seen.clear()
    runner = train(toy_config(4), work_dir=work)
    assert runner.iter == 4
    assert (work / "iter_2.pth").is_file() and (work / "iter_4.pth").is_file()
    assert not list(work.glob(".*tmp*")), "temporary checkpoint files left behind"
    # A killed run is one whose newest checkpoint is older than max_iters: resume continues it.
    runner = train(toy_config(6), work_dir=work, resume=True)
    assert RecordFirstIter.seen == [0, 4] and runner.iter == 6
    metrics = engine.test(toy_config(6), work / "iter_6.pth", work_dir=tmp_path / "eval")
    saved = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert saved["metrics"] == metrics and metrics["toy/mse"] < 4.0
    assert metrics["toy/has_dir"] == 1.0  # outfile_dir filled with the work dir


def test_config_typos_are_errors(tmp_path):
    cfg = toy_config()
    cfg.train_dataloder = cfg.train_dataloader
    with pytest.raises(ConfigError, match="did you mean 'train_dataloader'"):
        load_config(cfg)
    with pytest.raises(ConfigError, match=r"did you mean optim_wrapper\.optimizer\.lr"):
        load_config(toy_config(), ["optim_wrapper.optimizer.llr=0.1"])
    with pytest.raises(ConfigError, match="no key 'nope'"):
        load_config(toy_config(), ["nope.x=1"])
    cfg = load_config(toy_config(), ["optim_wrapper.optimizer.lr=0.5", "model.width=1"])
    assert cfg.optim_wrapper.optimizer.lr == 0.5
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_config(tmp_path / "missing.py")


def test_config_file_and_cli(tmp_path):
    from pe_dense.cli import main

    path = tmp_path / "toy.py"
    path.write_text(toy_config(2).pretty_text)
    assert main(["train", str(path), "--work-dir", str(tmp_path / "w"),
                 "--cfg-options", "train_cfg.max_iters=2"]) == 0
    assert main(["test", str(path), str(tmp_path / "w" / "iter_2.pth"),
                 "--work-dir", str(tmp_path / "w")]) == 0
    assert "toy/mse" in json.loads((tmp_path / "w" / "metrics.json").read_text())["metrics"]
    assert main(["train", str(path), "--cfg-options", "train_cfg.max_iter=3"]) == 2  # typo


def test_amp_on_cpu_is_a_clear_error(tmp_path):
    if torch.cuda.is_available():
        pytest.skip("has CUDA")
    with pytest.raises(ConfigError, match="CUDA"):
        build_runner(toy_config(), work_dir=tmp_path, amp=True)


def test_checkpoint_of_another_model_is_rejected(tmp_path):
    runner = build_runner(toy_config(), work_dir=tmp_path)
    torch.save({"state_dict": {"linear.weight": torch.zeros(1, 3),
                               "linear.bias": torch.zeros(1)}}, tmp_path / "other.pth")
    with pytest.raises(ValueError, match="shape mismatch.*linear.weight"):
        load_model_weights(runner.model, tmp_path / "other.pth")


class _WithBackbone(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.backbone = create_backbone("PE-Test")
        self.head = torch.nn.Linear(64, 2)


def test_layer_decay_groups():
    assert layer_id("conv1.weight", 4) == 0 and layer_id("ln_pre.bias", 4) == 0
    assert layer_id("transformer.resblocks.2.mlp.c_fc.weight", 4) == 3
    assert layer_id("ln_post.weight", 4) == 5
    model = _WithBackbone()
    groups = param_groups(model, lr=1.0, weight_decay=0.1, layer_decay=0.5)
    by_name = {n: g for g in groups for n in g["names"]}
    assert by_name["backbone.conv1.weight"]["lr"] == pytest.approx(0.5**5)
    assert by_name["backbone.transformer.resblocks.0.attn.in_proj_weight"]["lr"] == \
        pytest.approx(0.5**4)
    assert by_name["backbone.transformer.resblocks.3.mlp.c_fc.weight"]["lr"] == pytest.approx(0.5)
    assert by_name["head.weight"]["lr"] == 1.0 and by_name["head.weight"]["weight_decay"] == 0.1
    for name in ("backbone.positional_embedding", "backbone.class_embedding", "head.bias",
                 "backbone.ln_pre.weight", "backbone.transformer.resblocks.1.ln_1.weight"):
        assert by_name[name]["weight_decay"] == 0.0, name
    assert sum(len(g["params"]) for g in groups) == len(list(model.parameters()))
    default = param_groups(model, lr=1.0, weight_decay=0.1)  # PE-Test has 4 blocks -> 0.7
    assert {n: g for g in default for n in g["names"]}["backbone.conv1.weight"]["lr"] == \
        pytest.approx(0.7**5)


def test_tensorboard_scalars(tmp_path):
    pytest.importorskip("tensorboard")
    train(toy_config(2), work_dir=tmp_path, tensorboard=True)
    assert list(tmp_path.rglob("events.out.tfevents.*")), "no TensorBoard event file written"


def test_registries_import_the_engine_task_modules():
    from pe_dense.engine import registry

    for reg in (registry.MODELS, registry.DATASETS, registry.METRICS, registry.FUNCTIONS,
                registry.TRANSFORMS, registry.HOOKS):
        assert reg._locations == list(registry.TASK_MODULES)
    # no custom_imports needed: the first lookup imports the task modules
    with registry.MODELS.switch_scope_and_registry("pe_dense") as models:
        assert models.get("MaskRCNN").__module__ == "pe_dense.engine.tasks.detection"
    assert registry.FUNCTIONS.get("pe_dense.detection_collate") is not None
    assert registry.DATASETS.get("CocoDetection") is not None
    # every engine task module registers its task's model
    with registry.MODELS.switch_scope_and_registry("pe_dense") as models:
        for name in ("Segmentor", "DepthEstimator", "DistillModel"):
            assert models.get(name).__module__.startswith("pe_dense.engine.tasks.")
