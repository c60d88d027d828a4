"""Training engine: mmengine glue shared by every pe_dense task (detection, segmentation,
depth, distillation).

How a task plugs in
-------------------
1. Register your classes in the registries of :mod:`pe_dense.engine.registry` (children of
   mmengine's, scope ``pe_dense``): ``MODELS`` (models), ``DATASETS``, ``TRANSFORMS``,
   ``METRICS``, ``FUNCTIONS`` (collate functions), ``HOOKS``::

       from pe_dense.engine.registry import MODELS

       @MODELS.register_module()
       class MySegmentor(mmengine.model.BaseModel): ...

   and make the config import your module (nothing registers at ``import pe_dense``)::

       custom_imports = dict(imports=["pe_dense.tasks.segmentation.model"], allow_failed_imports=False)
       default_scope = "pe_dense"          # set by configs/_base_/default_runtime.py

   Collate functions are looked up without scope switching: write
   ``collate_fn=dict(type="pe_dense.my_collate")``.
2. Model: an ``mmengine.model.BaseModel``. The runner calls ``model(**batch, mode=...)`` where
   ``batch`` is what your collate function returns (a dict, e.g. ``inputs=`` a tensor and
   ``data_samples=`` a list of per-image dicts), after ``model.data_preprocessor`` has moved it
   to the device (``BaseDataPreprocessor`` does exactly that):

   - ``mode="loss"`` -> ``dict[str, Tensor]``; every key containing ``"loss"`` is summed into
     the optimised loss, the other entries are only logged;
   - ``mode="predict"`` -> a list with one prediction per image (any type your metric reads);
   - ``mode="tensor"`` -> raw outputs (optional).

   Set a ``task`` attribute (``"detection"``, ``"segmentation"``, ``"depth"``) so
   ``pe-dense predict`` / :class:`pe_dense.engine.predictor.Predictor` draw with the matching
   ``pe_dense.viz.drawing`` function (:data:`pe_dense.engine.predictor.DRAWERS`; or define
   ``draw_prediction(image, prediction, class_names)`` on the model). A model with
   ``predict_images(list of (H, W, 3) uint8) -> list`` is used through it directly; otherwise
   the Predictor runs the config's test pipeline, collate function and ``test_step``.
3. Metric: an ``mmengine.evaluator.BaseMetric`` registered in ``METRICS``.
   ``process(data_batch, data_samples)`` gets the collated batch and the model's
   ``predict`` outputs for it; append what you need to ``self.results``;
   ``compute_metrics(results) -> dict[str, float]``. A metric whose ``__init__`` takes
   ``outfile_dir`` gets the work dir from :func:`build_runner` when the config leaves it unset.
4. Optimiser: ``optim_wrapper = dict(constructor="LayerDecayOptimWrapperConstructor",
   optimizer=dict(type="AdamW", lr=..., weight_decay=...), paramwise_cfg=dict(layer_decay=0.7))``
   gives layer-wise lr decay to every PEViT inside the model (:mod:`pe_dense.engine.optim`).
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
