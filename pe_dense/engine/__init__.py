"""Training engine: mmengine glue shared by every pe_dense task (detection, segmentation,
depth, distillation).

How a task plugs in
-------------------
The library task model is a plain ``torch.nn.Module`` (no mmengine) in
``pe_dense/tasks/<task>/model.py`` with the stages ``preprocess(images uint8, sizes)`` (=
the backbone's ``normalize``), ``encode(x)``, ``decode(features, ...)``,
``forward(images, sizes=None)`` (raw outputs), ``loss(images, samples) -> dict``,
``predict(images, samples) -> list`` and ``predict_images(list of (H, W, 3) uint8) -> list``.
Its datasets, transforms, collate (the one place that pads) and plain evaluator live in
``pe_dense/data`` and ``pe_dense/evaluation``. The mmengine glue is one module per task,
``pe_dense/engine/tasks/<task>.py`` (see :mod:`pe_dense.engine.tasks`):

1. Register the library classes in the registries of :mod:`pe_dense.engine.registry`
   (children of mmengine's, scope ``pe_dense``): ``MODELS``, ``DATASETS``, ``TRANSFORMS``,
   ``METRICS``, ``FUNCTIONS`` (collate functions), ``HOOKS``::

       from pe_dense.engine.adapters import engine_model
       from pe_dense.engine.registry import FUNCTIONS, MODELS
       from pe_dense.tasks.my_task import model

       MySegmentor = MODELS.register_module(module=engine_model(model.MySegmentor, __name__))
       FUNCTIONS.register_module(name="my_collate", module=my_collate)

   The registries import the modules in :data:`pe_dense.engine.registry.TASK_MODULES` on first
   lookup, so configs need no ``custom_imports`` for pe_dense's own classes; a task outside
   pe_dense adds its glue module with
   ``custom_imports = dict(imports=["my_pkg.glue"], allow_failed_imports=False)``.
   ``default_scope = "pe_dense"`` is set by ``configs/_base_/default_runtime.py``; collate
   functions are looked up without scope switching: ``collate_fn=dict(type="pe_dense.my_collate")``.
   Older configs that still import moved modules (``pe_dense.models.detectors``, ...) load:
   :func:`load_config` maps them (:data:`pe_dense.engine.runner.MOVED_IMPORTS`).
2. Model: :func:`pe_dense.engine.adapters.engine_model` makes an ``mmengine.model.BaseModel``
   subclass of the library class (same state-dict keys). The runner calls
   ``model(**batch, mode=...)`` where ``batch`` is what your collate function returns
   (``inputs=`` the (B, 3, H, W) uint8 batch and ``data_samples=`` per-image dicts), after
   ``model.data_preprocessor`` has moved it to the device:

   - ``mode="loss"`` -> ``loss(inputs, data_samples)``: ``dict[str, Tensor]``; every key
     containing ``"loss"`` is summed into the optimised loss, the others are only logged;
   - ``mode="predict"`` -> ``predict(inputs, data_samples)``: one prediction per image;
   - ``mode="tensor"`` -> the library ``forward(inputs)``.

   Set a ``task`` attribute naming a registered task (``"detection"``, ``"segmentation"``,
   ``"depth"``, or your own: :func:`pe_dense.tasks.description.register_task`) so
   ``pe-dense predict`` / :class:`pe_dense.engine.predictor.Predictor`, export, the runtime and
   the demo find its :class:`~pe_dense.tasks.description.TaskDescription` (drawing, result
   files, export graph; see ``docs/architecture.md``, "Adding a task"). A model with
   ``predict_images`` is used through it directly; otherwise the Predictor runs the config's
   test pipeline, collate function and ``test_step``.
3. Metric: a thin ``mmengine.evaluator.BaseMetric`` over the plain evaluator, registered in
   ``METRICS``. ``process(data_batch, data_samples)`` gets the collated batch and the model's
   ``predict`` outputs for it; append what you need to ``self.results``;
   ``compute_metrics(results) -> dict[str, float]``. A metric whose ``__init__`` takes
   ``outfile_dir`` gets the work dir from :func:`build_runner` when the config leaves it unset.
4. Optimiser: ``optim_wrapper = dict(constructor="LayerDecayOptimWrapperConstructor",
   optimizer=dict(type="AdamW", lr=..., weight_decay=...), paramwise_cfg=dict(layer_decay=0.7))``
   gives layer-wise lr decay to every backbone inside the model (:mod:`pe_dense.engine.optim`).
5. Inherit ``configs/_base_/default_runtime.py`` (hooks, logging, atomic checkpoints, resume)
   and a schedule from ``configs/_base_/schedules/``. Then ``pe-dense train CONFIG`` and
   ``pe-dense test CONFIG CHECKPOINT`` (metrics.json in the work dir) work for the task.

Entry points: :func:`build_runner`, :func:`train`, :func:`test`, :func:`load_config`;
checkpoints of a run are written atomically and ``--resume`` continues from the newest one.
"""

from __future__ import annotations

from typing import Any

__all__ = ["build_runner", "train", "test", "load_config", "ConfigError"]


def __getattr__(name: str) -> Any:
    # mmengine is imported on first use, not at ``import pe_dense.engine``.
    if name in __all__:
        from pe_dense.engine import runner

        return getattr(runner, name)
    raise AttributeError(name)
