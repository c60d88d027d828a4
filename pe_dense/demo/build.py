"""Build the demo from command-line style options: the runtime (backbone on a device), an
optional trained task model (``--config --checkpoint``) and a factory that creates each mode on
first use (task modes without a trained model get randomly initialised heads)."""

from __future__ import annotations

import importlib
import inspect
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from pe_dense.demo.errors import ModelMismatch
from pe_dense.demo.modes import FeaturesMode, Mode
from pe_dense.demo.runtime import Runtime, pick_dtype
from pe_dense.tasks.description import TaskDescription, get_task, list_tasks, task_of
from pe_dense.utils.device import pick_device

__all__ = ["ModelOptions", "TaskModel", "load_task_model", "build_runtime", "mode_factory",
           "task_modes"]


def task_modes() -> tuple[str, ...]:
    """The demo mode of every registered task (``det``, ``seg``, ``depth``, ...)."""
    return tuple(d.mode for d in list_tasks() if d.draw is not None)

log = logging.getLogger(__name__)

@dataclass
class ModelOptions:
    """Which network runs. ``config``/``checkpoint``: a trained task model (heads included);
    otherwise ``model`` (a PE variant) with optional backbone ``weights`` and random heads."""

    model: str = "PE-Spatial-T16-512"
    weights: str | None = None
    config: str | None = None
    checkpoint: str | None = None
    resolution: int = 512
    device: str = "auto"
    precision: str = "auto"
    layer: int = -1
    pca_frames: int = 4
    track_box: tuple[int, int, int, int] | None = None
    score_thresh: float = 0.5
    runtime: str = "torch"
    onnx: str | None = None
    prompts: tuple[str, ...] = ()
    bridge: str | None = None


@dataclass
class TaskModel:
    """A trained task model: ``mode`` is the demo mode it serves (depth, seg or det)."""

    model: torch.nn.Module
    mode: str
    name: str
    class_names: tuple[str, ...] | None = None


def _mismatch(message: str, cause: BaseException) -> ModelMismatch:
    """A :class:`ModelMismatch` keeping the strict-load report's full key list (``details``)."""
    error = ModelMismatch(message)
    error.details = getattr(cause, "details", "")
    return error


def load_task_model(config: str, checkpoint: str) -> TaskModel:
    """Build the model of an mmengine ``config`` and load ``checkpoint`` strictly.

    The backbone's own ``weights`` entry is dropped (the checkpoint holds every weight), so no
    download happens. A checkpoint of another config raises :class:`ModelMismatch`.
    """
    from pe_dense.engine.build import load_model
    from pe_dense.engine.runner import ConfigError

    if not Path(checkpoint).is_file():
        raise ModelMismatch(f"--checkpoint {checkpoint} does not exist")
    try:
        loaded = load_model(config, checkpoint, device="cpu")
    except ConfigError:
        raise
    except ValueError as exc:  # another config's checkpoint: the strict-load report
        raise _mismatch(str(exc), exc) from exc
    try:
        desc = task_of(loaded.model, need=("draw",))
    except ValueError as exc:
        raise ModelMismatch(f"{config} builds {type(loaded.model).__name__}, which the demo "
                            f"cannot show: {exc}") from exc
    backbone = loaded.cfg.model.get("backbone")
    name = backbone.get("name", "") if isinstance(backbone, dict) else ""
    return TaskModel(loaded.model, desc.mode,
                     f"{Path(config).stem} ({name})".strip(), loaded.class_names)


def build_runtime(opts: ModelOptions) -> tuple[Runtime, TaskModel | None]:
    """The backbone on its device, and the trained task model when a config is given.
    Weight/shape mismatches become :class:`ModelMismatch`."""
    from pe_dense import create_backbone, list_models

    if bool(opts.config) != bool(opts.checkpoint):
        raise ValueError("--config and --checkpoint go together (a trained task model); for a "
                         "backbone alone use --model NAME [--weights PATH]")
    if opts.runtime == "onnxruntime":
        return _onnx_runtime(opts)
    device = pick_device(opts.device)
    dtype = pick_dtype(device, opts.precision)
    if opts.config:
        task = load_task_model(opts.config, opts.checkpoint)
        return Runtime(task.model.backbone, task.name, opts.resolution, device, dtype), task
    if opts.model not in list_models() and not opts.model.startswith("timm/"):
        raise ValueError(f"unknown --model {opts.model}; known: {', '.join(list_models())} "
                         "or timm/<model name>")
    try:
        backbone = create_backbone(opts.model, weights=opts.weights)
    except ValueError as exc:  # includes WeightLoadError / CheckpointError
        raise _mismatch(f"--weights {opts.weights} do not fit {opts.model}: {exc}", exc) from exc
    note = "" if opts.weights else "random backbone weights: pass --weights for real features"
    return Runtime(backbone, opts.model, opts.resolution, device, dtype, weights_note=note), None


def _onnx_runtime(opts: ModelOptions) -> tuple[Runtime, TaskModel | None]:
    """``--runtime onnxruntime --onnx PATH`` (CPU, fp32): a trained task model whose network
    runs the exported graph (``--config --checkpoint``), or an exported backbone."""
    from pe_dense.runtime import SessionBackbone, open_session
    from pe_dense.tasks.description import bind_task

    if not opts.onnx:
        raise ValueError("--runtime onnxruntime needs --onnx PATH (written by pe-dense export)")
    session = open_session(opts.onnx, "onnxruntime")
    cpu = torch.device("cpu")
    try:
        if opts.config:
            task = load_task_model(opts.config, opts.checkpoint)
            bind_task(task.model, session)
            name = f"{task.name} [onnxruntime]"
            return Runtime(task.model.backbone, name, opts.resolution, cpu, torch.float32), task
        backbone = SessionBackbone(session)
    except ValueError as exc:  # the export does not hold this model
        raise ModelMismatch(str(exc)) from exc
    name = f"{session.spec.get('source') or opts.onnx} [onnxruntime]"
    random = session.spec.get("random_weights", True)
    note = "random backbone weights (exported without --weights)" if random else ""
    return Runtime(backbone, name, opts.resolution, cpu, torch.float32, weights_note=note), None


def _random_task_model(desc: TaskDescription, runtime: Runtime) -> torch.nn.Module:
    """The task's model on the runtime's backbone with freshly initialised heads (plain
    PyTorch library classes: no mmengine needed)."""
    from pe_dense.runtime import SessionBackbone

    backbone = runtime.backbone
    if isinstance(backbone, SessionBackbone) or desc.random_model is None:
        raise ModelMismatch(f"mode {desc.mode} needs a trained task model here: export a "
                            "trained config (pe-dense export CONFIG --checkpoint CKPT) and run "
                            "the demo with --config CONFIG --checkpoint CKPT [--onnx PATH]")
    return desc.random_model(backbone, runtime.model_name)


def _task_mode(desc: TaskDescription, runtime: Runtime, opts: ModelOptions,
               task: TaskModel | None) -> Mode:
    """The mode of a task: its description's dedicated ``demo_mode`` class or the generic
    :class:`~pe_dense.demo.prediction.PredictionMode`, on ``task`` when it serves the mode,
    otherwise on random heads."""
    trained = task is not None and task.mode == desc.mode
    model = task.model if trained else _random_task_model(desc, runtime)
    names = task.class_names if trained else None
    if desc.demo_mode is None:
        from pe_dense.demo.prediction import PredictionMode

        return PredictionMode(runtime, model, trained, desc, names, opts.score_thresh)
    module, _, cls = desc.demo_mode.partition(":")
    mode_cls = getattr(importlib.import_module(module), cls)
    kwargs: dict[str, Any] = {}
    params = inspect.signature(mode_cls).parameters
    if "class_names" in params:
        kwargs["class_names"] = names
    if "score_thresh" in params:
        kwargs["score_thresh"] = opts.score_thresh
    return mode_cls(runtime, model, trained, **kwargs)


def mode_factory(runtime: Runtime, opts: ModelOptions,
                 task: TaskModel | None = None) -> Callable[[str], Mode]:
    """``build(name) -> Mode`` for features, depth, seg, det and track. Task modes use ``task``
    when it serves them, otherwise random heads on the runtime's backbone."""
    built: dict[str, Mode] = {}

    def build(name: str) -> Mode:
        if name in built:
            return built[name]
        if name == "features":
            mode = FeaturesMode(runtime, layer=opts.layer, fit_frames=opts.pca_frames)
        elif name == "track":
            from pe_dense.demo.track import TrackMode

            first = None  # a trained detector picks the object to track
            if task is not None and opts.track_box is None:
                first = getattr(build(task.mode), "first_box", None)
            mode = TrackMode(runtime, layer=opts.layer, box=opts.track_box, initial_box=first)
        elif name == "text":
            from pe_dense.demo.text import TextMode, build_text_model

            model = build_text_model(opts.model, opts.weights, opts.prompts, opts.bridge)
            mode = TextMode(runtime, model, trained=bool(opts.weights or opts.bridge))
        elif name in task_modes():
            mode = _task_mode(get_task(name), runtime, opts, task)
        else:
            raise ValueError(f"unknown mode {name}")
        built[name] = mode
        return mode

    return build
