"""pe_dense's mmengine registries: children of mmengine's root registries with scope ``pe_dense``.

Nothing registers at ``import pe_dense``: each registry imports its ``locations`` the first time
it is searched (``Registry.get``/``build``). Other tasks add their modules through a config's
``custom_imports = dict(imports=["pe_dense.models.my_task"], allow_failed_imports=False)`` (see
:mod:`pe_dense.engine`). Refer to a registered name as ``"Name"`` when the config sets
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

__all__ = ["SCOPE", "MODELS", "DATASETS", "TRANSFORMS", "METRICS", "OPTIM_WRAPPER_CONSTRUCTORS",
           "HOOKS", "FUNCTIONS", "DATA_SAMPLERS", "LOOPS", "OPTIMIZERS", "OPTIM_WRAPPERS",
           "PARAM_SCHEDULERS"]

SCOPE = "pe_dense"

MODELS = Registry("model", parent=MMENGINE_MODELS, scope=SCOPE,
                  locations=["pe_dense.tasks.detection.model"])
DATASETS = Registry("dataset", parent=MMENGINE_DATASETS, scope=SCOPE,
                    locations=["pe_dense.data.coco"])
TRANSFORMS = Registry("transform", parent=MMENGINE_TRANSFORMS, scope=SCOPE,
                      locations=["pe_dense.data.det_transforms"])
METRICS = Registry("metric", parent=MMENGINE_METRICS, scope=SCOPE,
                   locations=["pe_dense.evaluation.coco"])
OPTIM_WRAPPER_CONSTRUCTORS = Registry(
    "optimizer wrapper constructor", parent=MMENGINE_OPTIM_WRAPPER_CONSTRUCTORS, scope=SCOPE,
    locations=["pe_dense.engine.optim"])
HOOKS = Registry("hook", parent=MMENGINE_HOOKS, scope=SCOPE)
FUNCTIONS = Registry("function", parent=MMENGINE_FUNCTIONS, scope=SCOPE,
                     locations=["pe_dense.data.collate"])
DATA_SAMPLERS = Registry("data sampler", parent=MMENGINE_DATA_SAMPLERS, scope=SCOPE)
# Empty children so that lookups under scope "pe_dense" fall back to mmengine's loops,
# optimizers and schedulers without a warning.
LOOPS = Registry("loop", parent=MMENGINE_LOOPS, scope=SCOPE)
OPTIMIZERS = Registry("optimizer", parent=MMENGINE_OPTIMIZERS, scope=SCOPE)
OPTIM_WRAPPERS = Registry("optim_wrapper", parent=MMENGINE_OPTIM_WRAPPERS, scope=SCOPE)
PARAM_SCHEDULERS = Registry("parameter scheduler", parent=MMENGINE_PARAM_SCHEDULERS, scope=SCOPE)
