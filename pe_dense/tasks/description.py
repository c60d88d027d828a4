"""One description per task: what predict, the result writers, export, the runtime and the demo
need from a task, in one object, so that a new task is one package plus one registration.

A task package (``pe_dense/tasks/<task>/``) holds its model and a ``description.py`` module whose
``DESCRIPTION`` is a :class:`TaskDescription`; the built-in ones are listed in :data:`BUILTIN`
and imported on first lookup. A task outside pe_dense calls :func:`register_task` from its own
module (imported by an mmengine config's ``custom_imports``, which also registers its model).
Everything else looks a task up by the model's ``task`` attribute (:func:`task_of`); no other
layer keeps a table of task names.

Description modules import nothing heavy at import time: their callables import the model,
drawing and writing code when called.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["TaskDescription", "register_task", "unregister_task", "get_task", "task_of",
           "list_tasks", "BUILTIN", "bind_task"]

# The built-in task description modules (each defines DESCRIPTION), in the order tasks are listed.
BUILTIN = ("pe_dense.tasks.depth.description", "pe_dense.tasks.segmentation.description",
           "pe_dense.tasks.detection.description")


@dataclass(frozen=True)
class TaskDescription:
    """What the layers above the task models need from one task.

    - ``name``: the task models' ``task`` attribute (``"detection"``); ``mode``: its short name
      (demo mode and key, CLI choices: ``"det"``).
    - ``engine_modules``: modules registering the task's mmengine classes (imported by the
      engine's registries on first use).
    - ``draw(image, prediction, class_names, score_threshold) -> (H, W', 3) uint8``: the picture
      of one prediction (``image``: (H, W, 3) uint8 RGB; ``prediction``: one entry of the
      model's ``predict_images``).
    - ``writer(out, class_names, **options) -> ResultWriter``: the task's result files
      (:class:`pe_dense.tasks.results.ResultWriter`).
    - ``graph(model) -> (nn.Module, output names)``: the network ``pe-dense export`` writes
      (input ``x``: (B, 3, H, W) float in [-1, 1]).
    - ``bind(model, session) -> model``: make the model's stages run an exported graph of it
      (``session``: :class:`pe_dense.runtime.InferenceSession`).
    - ``random_model(backbone, variant) -> nn.Module``: the task model with freshly initialised
      heads on a backbone (the demo without a trained model).
    - ``demo_mode``: ``"module:Class"`` of a dedicated demo mode (constructed as
      ``Class(runtime, model, trained, class_names=..., score_thresh=...)``); None: the demo's
      generic prediction mode draws with ``draw``.
    - ``result_files``: a line for the docs and ``--help`` on what ``writer`` writes.
    - ``pipeline_tag``: the Hugging Face Hub task of its model repos (``"object-detection"``;
      None: none fits), written into their model cards so the hub lists them under it.
    """

    name: str
    mode: str
    engine_modules: tuple[str, ...] = ()
    draw: Callable[..., Any] | None = None
    writer: Callable[..., Any] | None = None
    graph: Callable[..., Any] | None = None
    bind: Callable[..., Any] | None = None
    random_model: Callable[..., Any] | None = None
    demo_mode: str | None = None
    result_files: str = ""
    pipeline_tag: str | None = None


_TASKS: dict[str, TaskDescription] = {}
_LOADED = False
_LOCK = threading.Lock()


def _load_builtin() -> None:
    global _LOADED
    with _LOCK:
        if _LOADED:
            return
        for module in BUILTIN:
            desc = importlib.import_module(module).DESCRIPTION
            _TASKS.setdefault(desc.name, desc)
        _LOADED = True


def register_task(description: TaskDescription, replace: bool = False) -> TaskDescription:
    """Add a task (``ValueError`` if its name or mode is taken, unless ``replace``)."""
    _load_builtin()
    taken = _TASKS.get(description.name)
    modes = {d.mode: d.name for d in _TASKS.values() if d.name != description.name}
    if not replace and (taken is not None and taken != description):
        raise ValueError(f"task {description.name!r} is already registered; pass replace=True "
                         "to override it")
    if description.mode in modes:
        raise ValueError(f"task mode {description.mode!r} is taken by task "
                         f"{modes[description.mode]!r}; pick another mode name")
    _TASKS[description.name] = description
    return description


def unregister_task(name: str) -> None:
    """Remove a registered task (a plug-in's, e.g. in tests); built-in ones stay."""
    _load_builtin()
    if any(importlib.import_module(m).DESCRIPTION.name == name for m in BUILTIN):
        raise ValueError(f"task {name!r} is built in; it cannot be unregistered")
    _TASKS.pop(name, None)


def list_tasks() -> list[TaskDescription]:
    """Every registered task, built-in ones first."""
    _load_builtin()
    return list(_TASKS.values())


def get_task(name: str) -> TaskDescription:
    """The task called ``name`` (its ``name`` or its ``mode``); ``ValueError`` listing the known
    ones otherwise."""
    for desc in list_tasks():
        if name in (desc.name, desc.mode):
            return desc
    known = ", ".join(f"{d.name} ({d.mode})" for d in list_tasks())
    raise ValueError(f"unknown task {name!r}; known tasks: {known} (a new task registers with "
                     "pe_dense.tasks.description.register_task)")


def task_of(model: Any, need: Sequence[str] = ()) -> TaskDescription:
    """The description of ``model``'s ``task`` attribute. ``need``: fields that must be set
    (e.g. ``("graph",)``); a model without a task, or a task without them, is a ``ValueError``
    saying what is missing."""
    task = getattr(model, "task", None)
    if task is None:
        known = ", ".join(d.name for d in list_tasks())
        raise ValueError(f"{type(model).__name__} has no 'task' attribute; task models set one "
                         f"of: {known}")
    desc = get_task(task)
    missing = [f for f in need if getattr(desc, f) is None]
    if missing:
        raise ValueError(f"task {desc.name!r} ({type(model).__name__}) does not support "
                         f"{', '.join(missing)}: its TaskDescription leaves "
                         f"{' and '.join(missing)} unset")
    return desc


def bind_task(model: Any, session: Any) -> Any:
    """Make ``model``'s network stages run ``session`` (an exported graph of the same task,
    from ``pe-dense export CONFIG --checkpoint CKPT``); returns ``model``. Its own ``predict`` /
    ``predict_images`` (pre- and post-processing in PyTorch) then use the exported network.
    A graph of another task is a ``ValueError``."""
    desc = task_of(model, need=("bind",))
    kind = session.spec.get("kind")
    if kind != desc.name:
        raise ValueError(f"{session.source} holds a {kind!r} graph but the model is a "
                         f"{desc.name!r} model: export this config (pe-dense export CONFIG "
                         "--checkpoint CKPT)")
    return desc.bind(model, session)
