"""pe_dense's mmengine registries: children of mmengine's root registries with scope ``pe_dense``.

Nothing registers at ``import pe_dense``: each registry imports its ``locations`` the first time
it is searched (``Registry.get``/``build``). Our own classes are registered by the engine task
modules :data:`TASK_MODULES` (each task description's ``engine_modules`` and the distillation
trainer's), so a config needs no ``custom_imports`` for them; a plug-in task outside pe_dense adds
its module through
``custom_imports = dict(imports=["my_pkg.engine_glue"], allow_failed_imports=False)``
(see :mod:`pe_dense.engine`). Refer to a registered name as ``"Name"`` when the config sets
``default_scope = "pe_dense"``, or as ``"pe_dense.Name"`` from anywhere (e.g. ``collate_fn``).
"""

from __future__ import annotations

from mmengine.registry import DATA_SAMPLERS as MMENGINE_DATA_SAMPLERS
from mmengine.registry import DATASETS as MMENGINE_DATASETS
from mmengine.registry import FUNCTIONS as MMENGINE_FUNCTIONS
from mmengine.registry import HOOKS as MMENGINE_HOOKS
from mmengine.registry import LOOPS as MMENGINE_LOOPS
from mmengine.registry import METRICS as MMENGINE_METRICS
from mmengine.registry import MODELS as MMENGINE_MODELS
from mmengine.registry import OPTIM_WRAPPER_CONSTRUCTORS as MMENGINE_OPTIM_WRAPPER_CONSTRUCTORS
from mmengine.registry import OPTIM_WRAPPERS as MMENGINE_OPTIM_WRAPPERS
from mmengine.registry import OPTIMIZERS as MMENGINE_OPTIMIZERS
from mmengine.registry import PARAM_SCHEDULERS as MMENGINE_PARAM_SCHEDULERS
from mmengine.registry import TRANSFORMS as MMENGINE_TRANSFORMS
from mmengine.registry import Registry

__all__ = ["SCOPE", "TASK_MODULES", "TRAINER_MODULES", "task_modules", "MODELS", "DATASETS",
           "TRANSFORMS", "METRICS", "OPTIM_WRAPPER_CONSTRUCTORS", "HOOKS", "FUNCTIONS",
           "DATA_SAMPLERS", "LOOPS", "OPTIMIZERS", "OPTIM_WRAPPERS", "PARAM_SCHEDULERS"]

SCOPE = "pe_dense"
# Trainers that are not prediction tasks register here; each task's description names its own
# engine modules (pe_dense.tasks.description).
TRAINER_MODULES = ("pe_dense.engine.tasks.distill", "pe_dense.engine.tasks.contrastive")


def task_modules() -> list[str]:
    """The modules that register pe_dense's classes: every registered task's
    ``engine_modules``, then :data:`TRAINER_MODULES`."""
    from pe_dense.tasks.description import list_tasks

    modules = [m for desc in list_tasks() for m in desc.engine_modules]
    return list(dict.fromkeys([*modules, *TRAINER_MODULES]))


TASK_MODULES = tuple(task_modules())


def _task_registry(name: str, parent: Registry) -> Registry:
    return Registry(name, parent=parent, scope=SCOPE, locations=list(TASK_MODULES))


MODELS = _task_registry("model", MMENGINE_MODELS)
DATASETS = _task_registry("dataset", MMENGINE_DATASETS)
TRANSFORMS = _task_registry("transform", MMENGINE_TRANSFORMS)
METRICS = _task_registry("metric", MMENGINE_METRICS)
HOOKS = _task_registry("hook", MMENGINE_HOOKS)
FUNCTIONS = _task_registry("function", MMENGINE_FUNCTIONS)
DATA_SAMPLERS = _task_registry("data sampler", MMENGINE_DATA_SAMPLERS)
OPTIM_WRAPPER_CONSTRUCTORS = Registry(
    "optimizer wrapper constructor", parent=MMENGINE_OPTIM_WRAPPER_CONSTRUCTORS, scope=SCOPE,
    locations=["pe_dense.engine.optim"])
# Empty children so that lookups under scope "pe_dense" fall back to mmengine's loops,
# optimizers and schedulers without a warning.
LOOPS = Registry("loop", parent=MMENGINE_LOOPS, scope=SCOPE)
OPTIMIZERS = Registry("optimizer", parent=MMENGINE_OPTIMIZERS, scope=SCOPE)
OPTIM_WRAPPERS = Registry("optim_wrapper", parent=MMENGINE_OPTIM_WRAPPERS, scope=SCOPE)
PARAM_SCHEDULERS = Registry("parameter scheduler", parent=MMENGINE_PARAM_SCHEDULERS, scope=SCOPE)
