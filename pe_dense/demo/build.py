"""Build the demo from command-line style options: the runtime (backbone on a device), an
optional trained task model (``--config --checkpoint``) and a factory that creates each mode on
first use (task modes without a trained model get randomly initialised heads)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from pe_dense.backbone.pe_vit import PEViT
from pe_dense.demo.errors import ModelMismatch
from pe_dense.demo.modes import FeaturesMode, Mode
from pe_dense.demo.runtime import Runtime, pick_dtype
from pe_dense.utils.device import pick_device

__all__ = ["ModelOptions", "TaskModel", "load_task_model", "build_runtime", "mode_factory"]

log = logging.getLogger(__name__)

TASK_MODES = {"depth": "depth", "segmentation": "seg", "detection": "det"}


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
    if loaded.task not in TASK_MODES:
        raise ModelMismatch(f"{config} builds {type(loaded.model).__name__} (task "
                            f"{loaded.task!r}); the demo shows {', '.join(TASK_MODES)} models")
    backbone = loaded.cfg.model.get("backbone")
    name = backbone.get("name", "") if isinstance(backbone, dict) else ""
    return TaskModel(loaded.model, TASK_MODES[loaded.task],
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
    if opts.model not in list_models():
        raise ValueError(f"unknown --model {opts.model}; known: {', '.join(list_models())}")
    try:
        backbone = create_backbone(opts.model, weights=opts.weights)
    except ValueError as exc:  # includes WeightLoadError / CheckpointError
        raise _mismatch(f"--weights {opts.weights} do not fit {opts.model}: {exc}", exc) from exc
    note = "" if opts.weights else "random backbone weights: pass --weights for real features"
    return Runtime(backbone, opts.model, opts.resolution, device, dtype, weights_note=note), None


def _onnx_runtime(opts: ModelOptions) -> tuple[Runtime, TaskModel | None]:
    """``--runtime onnxruntime --onnx PATH`` (CPU, fp32): a trained task model whose network
    runs the exported graph (``--config --checkpoint``), or an exported backbone."""
    from pe_dense.runtime import SessionBackbone, bind_task, open_session

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


def _random_task_model(mode: str, runtime: Runtime) -> torch.nn.Module:
    """A task model on the runtime's backbone with freshly initialised heads (plain PyTorch
    library classes: no mmengine needed)."""
    backbone = runtime.backbone
    if not isinstance(backbone, PEViT):
        raise ModelMismatch(f"mode {mode} needs a task model with an exported backbone: export "
                            "a trained config (pe-dense export CONFIG --checkpoint CKPT) and run "
                            "the demo with --config CONFIG --checkpoint CKPT --onnx PATH")
    if mode == "seg":
        from pe_dense.data.segmentation import CAMVID_CLASSES
        from pe_dense.tasks.segmentation.model import Segmentor

        return Segmentor(backbone=backbone, head={"type": "LinearHead"},
                         num_classes=len(CAMVID_CLASSES), class_names=CAMVID_CLASSES)
    if mode == "depth":
        from pe_dense.tasks.depth.model import DepthEstimator

        return DepthEstimator(backbone=backbone, head={"type": "DPTHead"},
                              variant=runtime.model_name)
    from pe_dense.tasks.detection.model import MaskRCNN

    return MaskRCNN(backbone=backbone, num_classes=80,
                    pyramid={"type": "SimpleFeaturePyramid", "out_channels": 128},
                    rpn={"pre_nms_top_n": {"training": 2000, "testing": 300},
                         "post_nms_top_n": {"training": 1000, "testing": 100}},
                    roi={"score_thresh": 0.0, "detections_per_img": 20})


def mode_factory(runtime: Runtime, opts: ModelOptions,
                 task: TaskModel | None = None) -> Callable[[str], Mode]:
    """``build(name) -> Mode`` for features, depth, seg, det and track. Task modes use ``task``
    when it serves them, otherwise random heads on the runtime's backbone."""
    from pe_dense.demo.tasks import DepthMode, DetMode, SegMode

    classes = {"depth": DepthMode, "seg": SegMode, "det": DetMode}
    built: dict[str, Mode] = {}

    def build(name: str) -> Mode:
        if name in built:
            return built[name]
        if name == "features":
            mode = FeaturesMode(runtime, layer=opts.layer, fit_frames=opts.pca_frames)
        elif name == "track":
            from pe_dense.demo.track import TrackMode

            first = None
            if task is not None and task.mode == "det" and opts.track_box is None:
                first = build("det").first_box
            mode = TrackMode(runtime, layer=opts.layer, box=opts.track_box, initial_box=first)
        elif name == "text":
            from pe_dense.demo.text import TextMode, build_text_model

            model = build_text_model(opts.model, opts.weights, opts.prompts, opts.bridge)
            mode = TextMode(runtime, model, trained=bool(opts.weights or opts.bridge))
        elif name in classes:
            trained = task is not None and task.mode == name
            model = task.model if trained else _random_task_model(name, runtime)
            kwargs: dict[str, Any] = {}
            if name != "depth":
                kwargs["class_names"] = task.class_names if trained else None
            if name == "det":
                kwargs["score_thresh"] = opts.score_thresh
            mode = classes[name](runtime, model, trained, **kwargs)
        else:
            raise ValueError(f"unknown mode {name}")
        built[name] = mode
        return mode

    return build
