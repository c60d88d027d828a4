"""Config loading and checking, an atomic-checkpoint mmengine Runner, and train/test entry points.

``build_runner(config, ...)`` is what ``pe-dense train`` and ``pe-dense test`` call; it works for
any task whose config names models, datasets and metrics registered in
:mod:`pe_dense.engine.registry`.
"""

from __future__ import annotations

import difflib
import importlib.util
import inspect
import json
import logging
import os
import uuid
from collections.abc import Sequence
from contextvars import ContextVar
from pathlib import Path
from typing import Any

import torch
from mmengine.config import Config, DictAction
from mmengine.dist import is_main_process
from mmengine.runner import Runner
from mmengine.utils import import_modules_from_strings

import pe_dense.engine.registry as registry
from pe_dense.backbone import checkpoints
from pe_dense.backbone.weights import CheckpointError, WeightLoadError, load_state_dict_checked
from pe_dense.engine import console, faults, fsdp
from pe_dense.engine.config_check import (
    ConfigError,
    check_option_types,
    check_run,
    check_syntax,
    explain_load_error,
    explain_type_error,
)
from pe_dense.utils.io import atomic_write_text

__all__ = ["ConfigError", "load_config", "build_runner", "train", "test", "load_model_weights",
           "parse_cfg_options", "read_training_checkpoint"]

log = logging.getLogger(__name__)

# Top-level keys Runner.from_cfg reads, plus mmengine's own config keys.
RUNNER_KEYS = {
    "model", "work_dir", "train_dataloader", "val_dataloader", "test_dataloader", "train_cfg",
    "val_cfg", "test_cfg", "auto_scale_lr", "optim_wrapper", "param_scheduler", "val_evaluator",
    "test_evaluator", "default_hooks", "custom_hooks", "data_preprocessor", "load_from", "resume",
    "launcher", "env_cfg", "log_processor", "log_level", "visualizer", "default_scope",
    "randomness", "experiment_name", "cfg", "custom_imports", "runner_type", "model_wrapper_cfg",
    "strategy",
}


# Modules that older configs list in ``custom_imports`` -> the engine module registering their
# classes today (the registries also import these on first lookup).
MOVED_IMPORTS = {
    "pe_dense.models.detectors": "pe_dense.engine.tasks.detection",
    "pe_dense.tasks.detection.model": "pe_dense.engine.tasks.detection",
    "pe_dense.data.coco": "pe_dense.engine.tasks.detection",
    "pe_dense.evaluation.coco": "pe_dense.engine.tasks.detection",
    "pe_dense.models.segmentors": "pe_dense.engine.tasks.segmentation",
    "pe_dense.tasks.segmentation.model": "pe_dense.engine.tasks.segmentation",
    "pe_dense.models.depth_models": "pe_dense.engine.tasks.depth",
    "pe_dense.tasks.depth.model": "pe_dense.engine.tasks.depth",
    "pe_dense.distill.model": "pe_dense.engine.tasks.distill",
    "pe_dense.distill.data": "pe_dense.engine.tasks.distill",
    "pe_dense.distill.runtime": "pe_dense.engine.tasks.distill",
}


# Whether the runner being built keeps mmengine's full console output (see build_runner).
_VERBOSE: ContextVar[bool] = ContextVar("pe_dense_verbose", default=True)


def parse_cfg_options(items: Sequence[str] | None) -> dict[str, Any]:
    """``["a.b=1", "c=[1,2]"]`` -> ``{"a.b": 1, "c": [1, 2]}`` (mmengine's value parsing)."""
    out: dict[str, Any] = {}
    for item in items or ():
        if "=" not in item:
            raise ConfigError(f"--cfg-options item {item!r} is not KEY=VALUE")
        key, value = item.split("=", 1)
        out[key] = DictAction._parse_iterable(value)
    return out


def complete_scope() -> None:
    """Give every mmengine root registry a (possibly empty) ``pe_dense`` child, so lookups
    under ``default_scope = "pe_dense"`` (log processor, visualizer, ...) find the scope
    instead of warning "Failed to search registry with scope" and falling back."""
    import mmengine.registry as roots
    from mmengine.registry import Registry

    for name in dir(roots):
        root = getattr(roots, name)
        if isinstance(root, Registry) and root.parent is None and \
                registry.SCOPE not in root.children:
            Registry(root.name, parent=root, scope=registry.SCOPE)


def _near(key: str, options: Sequence[str]) -> list[str]:
    return difflib.get_close_matches(key, list(options), n=3, cutoff=0.75)


def _check_option_keys(cfg: Config, options: dict[str, Any]) -> None:
    """Every --cfg-options key must exist, or be new under an existing dict and not a near-miss."""
    for dotted in options:
        node: Any = cfg._cfg_dict
        parts = dotted.split(".")
        for depth, part in enumerate(parts):
            if isinstance(node, list) and part.isdigit() and int(part) < len(node):
                node = node[int(part)]
                continue
            if not isinstance(node, dict):
                where = ".".join(parts[:depth]) or "<root>"
                raise ConfigError(f"--cfg-options {dotted}: {where} is not a dict in the config")
            if part not in node:
                near = _near(part, [k for k in node if isinstance(k, str)])
                last = depth == len(parts) - 1
                if near or not last:
                    hint = f"; did you mean {'.'.join(parts[:depth] + [near[0]])}?" if near else ""
                    raise ConfigError(
                        f"--cfg-options {dotted}: no key {part!r} in the config{hint}")
                log.info("--cfg-options adds the new key %s", dotted)
                break
            node = node[part]


def check_config(cfg: Config) -> None:
    """Reject top-level keys that look like misspelt Runner keys and missing essentials."""
    for key in cfg.keys():
        if key in RUNNER_KEYS or key.startswith("_"):
            continue
        near = _near(key, sorted(RUNNER_KEYS))
        if near:
            raise ConfigError(f"config key {key!r} is not used by the runner; did you mean "
                              f"{near[0]!r}? (helper variables must not look like runner keys)")
    if "model" not in cfg:
        raise ConfigError("the config has no 'model'; inherit a base with "
                          "_base_ = ['../_base_/...'] or define model = dict(type=...)")


def _moved_module(name: str) -> str:
    """The module to import for a ``custom_imports`` entry (``name`` unless it moved)."""
    target = MOVED_IMPORTS.get(name)
    if target is None or importlib.util.find_spec(target) is None:
        return name
    log.info("custom_imports: %s moved; importing %s instead (update the config)", name, target)
    return target


def _import_custom_modules(cfg: Config) -> None:
    """Rewrite ``custom_imports`` names of moved modules (:data:`MOVED_IMPORTS`), then import."""
    custom = cfg.get("custom_imports")
    if not custom or not custom.get("imports"):
        return
    names = [custom.imports] if isinstance(custom.imports, str) else list(custom.imports)
    new = list(dict.fromkeys(_moved_module(name) for name in names))
    custom.imports = new
    try:
        import_modules_from_strings(**custom)
    except ImportError as exc:
        raise ConfigError(f"custom_imports {new}: {exc}; list modules that exist (pe_dense's own "
                          "classes need no custom_imports)") from exc


def load_config(config: str | os.PathLike | Config,
                cfg_options: dict[str, Any] | Sequence[str] | None = None) -> Config:
    """Read an mmengine Python config (with ``_base_`` inheritance), import its
    ``custom_imports`` (moved pe_dense modules mapped by :data:`MOVED_IMPORTS`), merge
    ``cfg_options`` (dotted keys, checked against the config) and check it."""
    if isinstance(config, Config):
        cfg = config.copy()
    else:
        path = Path(config)
        if not path.is_file():
            raise FileNotFoundError(
                f"config file {path} does not exist (see configs/ for examples)")
        check_syntax(path)
        try:
            cfg = Config.fromfile(str(path), import_custom_modules=False)
        except (FileNotFoundError, ImportError):
            raise
        except Exception as exc:  # the config's own code failed (NameError ...)
            raise explain_load_error(path, exc) from exc
    _import_custom_modules(cfg)
    if cfg_options:
        options = (parse_cfg_options(cfg_options) if not isinstance(cfg_options, dict)
                   else dict(cfg_options))
        _check_option_keys(cfg, options)
        check_option_types(cfg, options)
        cfg.merge_from_dict(options)
    cfg.setdefault("default_scope", registry.SCOPE)
    complete_scope()
    check_config(cfg)
    return cfg


class AtomicCheckpointRunner(Runner):
    """An mmengine Runner whose checkpoints are written to a temporary name, then renamed, so a
    killed run never leaves a truncated checkpoint for ``--resume`` to pick up.

    It also runs the config's ``strategy`` block (:mod:`pe_dense.engine.fsdp`): activation
    checkpointing per backbone block, and FSDP with sharded checkpoint folders instead of DDP."""

    def wrap_model(self, model_wrapper_cfg: dict | None, model: torch.nn.Module) -> Any:
        strategy = fsdp.check_strategy(self.cfg.get("strategy"))
        if strategy["grad_checkpointing"]:
            count = fsdp.set_grad_checkpointing(model)
            self.logger.info(f"activation checkpointing per block in {count} backbone(s)")
        if strategy["type"] != "fsdp":
            return super().wrap_model(model_wrapper_cfg, model)
        if not self.distributed:
            raise ConfigError("strategy fsdp needs several processes: torchrun --nproc_per_node "
                              "N tools/train.py CONFIG --launcher pytorch --strategy fsdp")
        from mmengine.device import get_device

        if hasattr(model, "init_weights"):  # mmengine does it at train(); shards must be cut after
            model.init_weights()
        options = fsdp.fsdp_options(strategy, cuda=torch.cuda.is_available())
        return fsdp.FullyShardedModel(model.to(get_device()), **options)

    def _init_model_weights(self) -> None:
        if not self.sharded:  # sharded models were initialised (and synchronised) before
            super()._init_model_weights()

    @property
    def sharded(self) -> bool:
        """Whether the model is FSDP-sharded (checkpoints are then folders of shards)."""
        return isinstance(self.model, fsdp.FullyShardedModel)

    resumed_from: str | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.saved_checkpoints: list[str] = []
        self.nonfinite_iters: list[int] = []
        super().__init__(*args, **kwargs)

    def build_logger(self, *args: Any, **kwargs: Any) -> Any:
        logger = super().build_logger(*args, **kwargs)
        self.logger = logger
        console.attach(self, verbose=_VERBOSE.get())
        return logger

    def build_model(self, model: Any) -> Any:
        try:
            return super().build_model(model)
        except (TypeError, ValueError, KeyError) as exc:  # a nested section (model.rpn ...)
            name = self.cfg.filename or "the config"
            explained = (explain_type_error(exc, self.cfg.get("model"))
                         if isinstance(exc, TypeError) else f"model: {exc}")
            if explained is None or isinstance(exc, (ConfigError, WeightLoadError)):
                raise
            raise ConfigError(f"{name}: {explained}\nfix: edit the config, or override with "
                              "--cfg-options KEY=VALUE") from exc

    def build_optim_wrapper(self, optim_wrapper: Any) -> Any:
        return faults.guard_optim_wrapper(self, super().build_optim_wrapper(optim_wrapper))

    def train(self) -> torch.nn.Module:
        hook = next((h for h in self.hooks if isinstance(h, console.ConsoleHook)), None)
        if hook is not None:
            hook.announce(self)  # before the datasets are built (and log)
        try:
            return super().train()
        finally:
            console.detach(self)

    def test(self) -> dict:
        try:
            return super().test()
        finally:
            console.detach(self)

    def save_checkpoint(self, out_dir: str, filename: str, *args: Any, **kwargs: Any) -> None:
        """Write atomically (a temporary name, then a rename); a failed write raises
        :class:`~pe_dense.engine.faults.CheckpointWriteError` and replaces nothing."""
        path = os.path.join(out_dir, filename)
        if self.sharded:
            self._save_sharded(path, **kwargs)
            self._saved(path)
            return
        if not is_main_process():
            return
        tmp = f".{filename}.tmp-{os.getpid()}"
        try:
            super().save_checkpoint(out_dir, tmp, *args, **kwargs)
            os.replace(os.path.join(out_dir, tmp), path)
        except OSError as exc:
            raise faults.write_error(exc, path, self) from exc
        finally:
            Path(out_dir, tmp).unlink(missing_ok=True)
        self._saved(path)

    def _saved(self, path: str) -> None:
        if path in self.saved_checkpoints:
            self.saved_checkpoints.remove(path)
        self.saved_checkpoints.append(path)
        console.say(self, f"checkpoint {path}")

    def _save_sharded(self, path: str, save_optimizer: bool = True,
                      save_param_scheduler: bool = True, meta: dict | None = None,
                      by_epoch: bool = True, **_: Any) -> None:
        """Every rank writes its shards; rank 0 the Runner state (what mmengine's checkpoint
        holds besides the weights and the optimiser)."""
        import mmengine

        meta = dict(meta or {})
        meta.setdefault("epoch", self.epoch + 1 if by_epoch else self.epoch)
        meta.setdefault("iter", self.iter if by_epoch else self.iter + 1)
        meta.update(cfg=self.cfg.pretty_text, seed=self.seed, experiment_name=self.experiment_name,
                    mmengine_version=mmengine.__version__, sharded=True)
        if hasattr(self.train_dataloader.dataset, "metainfo"):
            meta.update(dataset_meta=self.train_dataloader.dataset.metainfo)
        state: dict[str, Any] = {"meta": meta, "message_hub": self.message_hub.state_dict()}
        if save_param_scheduler and self.param_schedulers is not None:
            schedulers = self.param_schedulers
            state["param_schedulers"] = (
                {k: [s.state_dict() for s in v] for k, v in schedulers.items()}
                if isinstance(schedulers, dict) else [s.state_dict() for s in schedulers])
        self.call_hook("before_save_checkpoint", checkpoint=state)
        optimizer = self.optim_wrapper.optimizer if save_optimizer else None
        fsdp.save_sharded(self.model, optimizer, path, state)

    def resume(self, filename: str, resume_optimizer: bool = True, *args: Any,
               **kwargs: Any) -> None:
        if self.sharded != fsdp.is_sharded_checkpoint(filename):
            raise ConfigError(f"cannot resume from {filename}: resume an FSDP run with "
                              "--strategy fsdp (same number of processes), a DDP run without")
        self._resume_optimizer = resume_optimizer
        self._resuming = True
        try:
            super().resume(filename, resume_optimizer, *args, **kwargs)
        finally:
            self._resume_optimizer = self._resuming = False
        self.resumed_from = filename

    def load_checkpoint(self, filename: str, map_location: Any = "cpu", strict: bool = False,
                        revise_keys: Sequence = ((r"^module.", ""),)) -> dict:
        """``load_from`` and ``--resume``: read by :mod:`pe_dense.backbone.checkpoints` (a
        bad file is a message saying what it is); ``--resume`` unpickles the run's own
        checkpoint in full (mmengine's log buffers), ``load_from`` reads safely."""
        if fsdp.is_sharded_checkpoint(filename) or self.sharded:
            return self._load_into_sharded(filename)
        from mmengine.model import is_model_wrapper
        from mmengine.runner.checkpoint import _load_checkpoint_to_model

        resuming = getattr(self, "_resuming", False)
        checkpoint = checkpoints.load_object(filename, trusted=resuming,
                                             command="resume" if resuming else "weights")
        if resuming and not isinstance((checkpoint or {}).get("meta"), dict):
            info = checkpoints.inspect_checkpoint(filename)
            raise CheckpointError(f"cannot resume from {filename}: it is {info.what}, not a "
                                  "checkpoint of a pe-dense train run")
        self.call_hook("after_load_checkpoint", checkpoint=checkpoint)
        model = self.model.module if is_model_wrapper(self.model) else self.model
        checkpoint = _load_checkpoint_to_model(model, checkpoint, strict,
                                               revise_keys=list(revise_keys))
        self._has_loaded = True
        self.logger.info(f"Load checkpoint from {filename}")
        return checkpoint

    def _load_into_sharded(self, filename: str) -> dict:
        """A sharded folder into the sharded model (+ optimiser when resuming), or a plain
        checkpoint (``load_from``) into either; a sharded folder into a plain model."""
        model = self.model.module if hasattr(self.model, "module") else self.model
        if self.sharded and fsdp.is_sharded_checkpoint(filename):
            optimizer = (self.optim_wrapper.optimizer
                         if getattr(self, "_resume_optimizer", False) else None)
            checkpoint = fsdp.load_sharded(self.model, optimizer, filename)
        else:
            state_dict, meta = read_training_checkpoint(filename, with_meta=True)
            if self.sharded:
                fsdp.load_full_state_dict(self.model, state_dict)
            else:
                load_model_weights(model, filename, state_dict=state_dict)
            checkpoint = {"meta": meta}
        self.call_hook("after_load_checkpoint", checkpoint=checkpoint)
        self._has_loaded = True
        self.logger.info(f"Load checkpoint from {filename}")
        return checkpoint


def read_training_checkpoint(path: str | os.PathLike, with_meta: bool = False, *,
                             config: str | os.PathLike | None = None) -> Any:
    """The model state dict of a ``pe-dense train`` checkpoint (or of a bare state dict file,
    or of a sharded FSDP checkpoint folder, consolidated on the fly); ``(state_dict, meta)``
    with ``with_meta`` (meta: mmengine's, e.g. ``dataset_meta``).

    Read safely by :mod:`pe_dense.backbone.checkpoints` (no pickled code runs). A file that is
    not such a checkpoint (a backbone, an image, a truncated copy ...) raises
    :class:`~pe_dense.backbone.weights.CheckpointError` saying what it is and what to pass
    (``config``: the config to name in that advice).
    """
    sd, meta, _ = checkpoints.read_model_state_dict(
        path, command="test", config=str(config) if config is not None else None)
    return (sd, meta) if with_meta else sd


def _fill_metric_dirs(cfg: Config, work_dir: str) -> None:
    """Give metrics that take ``outfile_dir`` the work dir when the config leaves it unset."""
    for key in ("val_evaluator", "test_evaluator"):
        evaluator = cfg.get(key)
        metrics = evaluator if isinstance(evaluator, list) else [evaluator]
        for metric in metrics:
            if not isinstance(metric, dict) or not isinstance(metric.get("type"), str):
                continue
            with registry.METRICS.switch_scope_and_registry(cfg.default_scope) as reg:
                cls = reg.get(metric["type"])
            if cls is None:
                raise ConfigError(f"{key}: unknown metric type {metric['type']!r}; register it "
                                  "in pe_dense.engine.registry.METRICS from an engine task module "
                                  "(pe_dense/engine/tasks) or a module listed in custom_imports")
            if "outfile_dir" in inspect.signature(cls).parameters and not metric.get("outfile_dir"):
                metric["outfile_dir"] = work_dir


def _set_launcher(cfg: Config, launcher: str) -> None:
    if launcher not in ("none", "pytorch"):
        raise ConfigError(f"launcher {launcher!r} is not supported; use 'none' or 'pytorch'")
    cfg.launcher = launcher
    if launcher == "none" or torch.cuda.is_available():
        return
    # CPU: gloo, DDP without device ids, and init the group here (mmengine's pytorch launcher
    # calls cuda.set_device).
    cfg.setdefault("env_cfg", {}).setdefault("dist_cfg", {})["backend"] = "gloo"
    wrapper = cfg.get("model_wrapper_cfg") or dict(
        type="MMDistributedDataParallel", broadcast_buffers=False,
        find_unused_parameters=cfg.get("find_unused_parameters", False))
    wrapper.setdefault("device_ids", None)
    cfg.model_wrapper_cfg = wrapper
    if not torch.distributed.is_initialized():
        for var in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR"):
            if var not in os.environ:
                raise ConfigError(f"--launcher pytorch needs ${var}: start with torchrun "
                                  "--nproc_per_node N tools/train.py CONFIG --launcher pytorch")
        torch.distributed.init_process_group("gloo")


def _set_strategy(cfg: Config, kind: str | None, grad_checkpointing: bool,
                  offload: bool) -> None:
    """Merge the command line's strategy options into the config's ``strategy`` block."""
    strategy = dict(cfg.get("strategy") or {})
    if kind is not None:
        strategy["type"] = kind
    if grad_checkpointing:
        strategy["grad_checkpointing"] = True
    if offload:
        strategy["offload"] = True
    try:
        strategy = fsdp.check_strategy(strategy)
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc
    if strategy.get("offload") and strategy["type"] != "fsdp":
        raise ConfigError("--cpu-offload (strategy offload=True) needs --strategy fsdp")
    cfg.strategy = strategy
    wrapper = cfg.get("optim_wrapper") or {}
    if strategy["type"] == "fsdp" and wrapper.get("type") == "AmpOptimWrapper":
        # FSDP's mixed-precision policy computes in bf16 itself (strategy.mixed_precision).
        log.info("strategy fsdp: AmpOptimWrapper replaced by OptimWrapper (FSDP computes in "
                 "strategy.mixed_precision itself)")
        for key in ("dtype", "loss_scale", "use_fsdp"):
            wrapper.pop(key, None)
        wrapper["type"] = "OptimWrapper"


def build_runner(config: str | os.PathLike | Config, work_dir: str | os.PathLike | None = None,
                 resume: bool = False, amp: bool = False,
                 cfg_options: dict[str, Any] | Sequence[str] | None = None,
                 launcher: str = "none", tensorboard: bool = False,
                 strategy: str | None = None, grad_checkpointing: bool = False,
                 offload: bool = False, verbose: bool = True,
                 check: str | None = "train") -> Runner:
    """An mmengine Runner for ``config``.

    ``work_dir``: default ``work_dirs/<config name>``; ``resume``: continue from the newest
    checkpoint in ``work_dir`` (a fresh start if there is none); ``amp``: mixed precision
    (CUDA only); ``cfg_options``: dotted overrides; ``launcher``: ``"pytorch"`` under
    ``torchrun`` (gloo on CPU); ``tensorboard``: also log scalars for TensorBoard;
    ``strategy`` (``"ddp"``/``"fsdp"``), ``grad_checkpointing``, ``offload``: set those keys
    of the config's ``strategy`` block (:mod:`pe_dense.engine.fsdp`); ``verbose``: keep
    mmengine's full console output (False: one screen, see :mod:`pe_dense.engine.console`;
    everything still goes to the log file in the work dir); ``check``: check the config for a
    ``"train"`` or ``"test"`` run before the engine starts
    (:func:`pe_dense.engine.config_check.check_run`; None: no check).

    The run always saves its last iteration, removes outdated checkpoints only after a new one
    is written, and stops with a clear message on a non-finite loss or an unreadable training
    sample (``train_cfg.skip_nonfinite`` / ``train_cfg.skip_bad_samples`` skip and count them
    instead): see :mod:`pe_dense.engine.faults`.
    """
    cfg = load_config(config, cfg_options)
    if check:
        check_run(cfg, check)
    _set_run_hooks(cfg)
    _set_strategy(cfg, strategy, grad_checkpointing, offload)
    _set_work_dir(cfg, work_dir)
    if resume:
        cfg.resume = True
        cfg.load_from = None
    if amp:
        _set_amp(cfg)
    if tensorboard:
        _set_tensorboard(cfg)
    if not cfg.get("experiment_name"):
        # mmengine names its logger/visualizer instances by experiment name + timestamp; two
        # runners built in the same second would otherwise share (and mix) them.
        stem = Path(cfg.filename).stem if cfg.filename else "run"
        cfg.experiment_name = f"{stem}_{uuid.uuid4().hex[:8]}"
    _set_launcher(cfg, launcher)
    _fill_metric_dirs(cfg, cfg.work_dir)
    token = _VERBOSE.set(verbose)
    try:
        return AtomicCheckpointRunner.from_cfg(cfg)
    finally:
        _VERBOSE.reset(token)


def _set_work_dir(cfg: Config, work_dir: str | os.PathLike | None) -> None:
    """``work_dir``, else the config's, else ``work_dirs/<config name>``."""
    if work_dir is not None:
        cfg.work_dir = str(work_dir)
    elif not cfg.get("work_dir"):
        name = Path(cfg.filename).stem if cfg.filename else "run"
        cfg.work_dir = str(Path("work_dirs") / name)


def _set_amp(cfg: Config) -> None:
    """``--amp``: mmengine's AmpOptimWrapper (CUDA, not with FSDP)."""
    if not torch.cuda.is_available():
        raise ConfigError("--amp needs a CUDA GPU; on the CPU train in float32")
    if cfg.strategy["type"] == "fsdp":
        raise ConfigError("--amp and --strategy fsdp: FSDP computes in bf16 itself "
                          "(strategy mixed_precision); drop --amp")
    cfg.optim_wrapper.type = "AmpOptimWrapper"
    cfg.optim_wrapper.setdefault("loss_scale", "dynamic")


def _set_tensorboard(cfg: Config) -> None:
    """``--tensorboard``: scalars to TensorBoard beside the local log."""
    try:
        import tensorboard  # noqa: F401
    except ImportError as exc:
        raise ImportError("--tensorboard needs the tensorboard package: "
                          "pip install tensorboard") from exc
    cfg.visualizer = dict(type="Visualizer", vis_backends=[
        dict(type="LocalVisBackend"), dict(type="TensorboardVisBackend")])


def _set_run_hooks(cfg: Config) -> None:
    """The run's own hooks and wrappers: the checkpoint hook that always saves the last
    iteration (and removes old checkpoints only after writing a new one), the console, the
    non-finite loss check, and the guard around the training set (``train_cfg`` keys
    ``skip_nonfinite`` and ``skip_bad_samples``, removed before mmengine reads it)."""
    train_cfg = cfg.get("train_cfg") or {}
    policy = {key: bool(train_cfg.pop(key, False)) for key in faults.FAULT_KEYS}
    hooks = cfg.get("default_hooks")
    checkpoint = hooks.get("checkpoint") if isinstance(hooks, dict) else None
    if isinstance(checkpoint, dict) and str(checkpoint.get("type", "")).rsplit(".", 1)[-1] in (
            "CheckpointHook", "SafeCheckpointHook"):
        if checkpoint.get("save_last") is False:
            log.info("default_hooks.checkpoint.save_last=False ignored: the last iteration is "
                     "always saved")
        checkpoint.update(type="SafeCheckpointHook", save_last=True)
    custom = list(cfg.get("custom_hooks") or [])
    names = {str(h.get("type", "")).rsplit(".", 1)[-1] for h in custom if isinstance(h, dict)}
    custom = [h for h in custom if not (isinstance(h, dict) and h.get("type") == "NonFiniteHook")]
    custom.append(dict(type="NonFiniteHook", skip=policy["skip_nonfinite"]))
    if "ConsoleHook" not in names:
        custom.append(dict(type="ConsoleHook"))
    cfg.custom_hooks = custom
    loader = cfg.get("train_dataloader")
    dataset = loader.get("dataset") if isinstance(loader, dict) else None
    if isinstance(dataset, dict):
        if dataset.get("type") == "GuardedDataset":
            dataset["skip_bad_samples"] = policy["skip_bad_samples"]
        else:
            loader["dataset"] = dict(type="GuardedDataset", dataset=dataset,
                                     skip_bad_samples=policy["skip_bad_samples"])


def train(config: str | os.PathLike | Config, **kwargs: Any) -> Runner:
    """Build a runner (see :func:`build_runner`) and train; returns the runner."""
    runner = build_runner(config, **kwargs)
    runner.train()
    return runner


def load_model_weights(model: torch.nn.Module, checkpoint: str | os.PathLike,
                       state_dict: dict[str, torch.Tensor] | None = None, *,
                       config: str | os.PathLike | None = None) -> None:
    """Load a training checkpoint (``state_dict`` inside, or a bare state dict) strictly.

    ``state_dict``: the checkpoint's already read by :func:`read_training_checkpoint` (then
    ``checkpoint`` only names it in messages); ``config``: the config the model was built from
    (named in messages). A checkpoint of another task model raises
    :class:`~pe_dense.backbone.weights.CheckpointError` naming both models and the command
    that evaluates it; one of the same model with another architecture (e.g. another backbone
    variant) raises :class:`~pe_dense.backbone.weights.WeightLoadError` (a ValueError) with the
    one strict-load report, listing the mismatching keys instead of loading part of it.
    """
    sd = (read_training_checkpoint(checkpoint, config=config) if state_dict is None
          else state_dict)
    try:
        load_state_dict_checked(
            model, sd, source_format="pe-dense training checkpoint",
            headline=f"checkpoint {checkpoint} does not fit the model built from "
                     f"{config or 'the config'} (was it trained with another config or "
                     "backbone variant?)")
    except WeightLoadError as exc:
        raise _explain_mismatch(exc, model, checkpoint, config) from exc


def check_checkpoint_model(cfg: Config, info: checkpoints.CheckpointInfo) -> None:
    """A :class:`CheckpointError` when ``info`` holds another task model than ``cfg`` builds."""
    wanted = cfg.model.get("type") if isinstance(cfg.get("model"), dict) else None
    if not isinstance(wanted, str) or not info.model_type:
        return
    wanted = wanted.rsplit(".", 1)[-1]
    if info.model_type.rsplit(".", 1)[-1] != wanted:
        name = cfg.filename or "the config"
        backbone = cfg.model.get("backbone") or cfg.model.get("student") or {}
        variant = backbone.get("name") or backbone.get("model") if isinstance(
            backbone, dict) else None
        raise CheckpointError(f"{info.path} is {info.what}, but {name} builds a {wanted}\n"
                              f"fix: {checkpoints.advice(info, 'test', name, variant)}")


def _explain_mismatch(exc: WeightLoadError, model: torch.nn.Module,
                      checkpoint: str | os.PathLike, config: Any) -> ValueError:
    """The strict-load error, led by what the checkpoint is; another task model's checkpoint
    becomes a short :class:`CheckpointError` instead of a list of keys."""
    if not Path(checkpoint).exists():
        return exc
    info = checkpoints.inspect_checkpoint(checkpoint)
    name = type(getattr(model, "module", model)).__name__
    cfg = str(config) if config is not None else None
    if info.model_type and info.model_type != name:
        return CheckpointError(
            f"{checkpoint} is {info.what}, but {cfg or 'the config'} builds a {name}\n"
            f"fix: {checkpoints.advice(info, 'test', cfg)}")
    headline = (f"{checkpoint} is {info.what} and does not fit the {name} built from "
                f"{cfg or 'the config'} (trained with another config or backbone?)")
    summary = exc.report.summary(limit=6) if exc.report is not None else str(exc)
    return WeightLoadError(f"{headline}\n{summary}", exc.report)


def test(config: str | os.PathLike | Config, checkpoint: str | os.PathLike,
         work_dir: str | os.PathLike | None = None,
         cfg_options: dict[str, Any] | Sequence[str] | None = None,
         launcher: str = "none", onnx: str | os.PathLike | None = None,
         verbose: bool = True) -> dict[str, float]:
    """Evaluate ``checkpoint`` on the config's test split; writes ``metrics.json`` in the work dir
    and returns the metrics. ``onnx``: run the network as this exported graph in ONNX Runtime
    (``pe-dense export CONFIG --checkpoint CKPT --dynamic``; pre/post-processing in PyTorch);
    ``verbose``: see :func:`build_runner`. The config is checked and the checkpoint read and
    matched with it before the engine starts."""
    cfg = load_config(config, cfg_options)
    name = cfg.filename or "the config"
    # The checkpoint is read and matched with the config before the engine starts.
    state_dict, _, info = checkpoints.read_model_state_dict(checkpoint, "test", name)
    check_checkpoint_model(cfg, info)
    runner = build_runner(cfg, work_dir=work_dir, launcher=launcher, verbose=verbose,
                          check="test")
    load_model_weights(runner.model, checkpoint, state_dict, config=name)
    if onnx is not None:
        from pe_dense.runtime import open_session
        from pe_dense.tasks.description import bind_task

        bind_task(runner.model, open_session(onnx, "onnxruntime"))
    metrics = {k: float(v) if isinstance(v, (int, float)) else v
               for k, v in runner.test().items()}
    if is_main_process():
        out = atomic_write_text(Path(runner.work_dir) / "metrics.json", json.dumps(
            {"checkpoint": str(checkpoint), "metrics": metrics}, indent=2))
        log.debug("metrics written to %s", out)
    return metrics

