"""mmengine adapters for plain-PyTorch library models.

:func:`engine_model` turns a library model class (an ``nn.Module`` with ``forward(images)``,
``loss(images, samples)`` and ``predict(images, samples)``) into an ``mmengine.model.BaseModel``
subclass *of that class*: same attributes, same state-dict keys (checkpoints are unchanged), and
``isinstance(model, LibraryClass)`` holds. The runner calls ``model(inputs, data_samples,
mode=...)``; the adapter dispatches ``"loss"`` -> ``loss``, ``"predict"`` -> ``predict``,
``"tensor"`` -> the library ``forward(images, sizes)`` (``sizes``: the samples' ``img_size``
when every sample has one, else None). Library methods call each other directly (never
``self.forward``, which is the adapter's here).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from mmengine.model import BaseModel
from torch import nn

__all__ = ["engine_model", "register_task"]


def _sizes(data_samples: list | None) -> list[tuple[int, int]] | None:
    """The unpadded (h, w) of each sample (its ``img_size``), or None if any sample lacks it."""
    if not data_samples or not all(isinstance(s, Mapping) and "img_size" in s
                                   for s in data_samples):
        return None
    return [tuple(int(v) for v in s["img_size"]) for s in data_samples]


def engine_model(cls: type[nn.Module], module: str) -> type:
    """A ``BaseModel`` subclass of ``cls`` registered-ready, defined in ``module``.

    Its ``__init__`` takes ``cls``'s keyword arguments plus mmengine's ``data_preprocessor``
    and ``init_cfg``. The library ``__init__`` runs first: its ``super().__init__()`` reaches
    ``BaseModel.__init__`` with defaults (so ``nn.Module`` is set up once), then the
    preprocessor from the config replaces the default one.
    """

    def __init__(self: Any, *, data_preprocessor: Any = None, init_cfg: Any = None,
                 **kwargs: Any) -> None:
        cls.__init__(self, **kwargs)
        if data_preprocessor is not None:
            if not isinstance(data_preprocessor, nn.Module):
                from pe_dense.engine.registry import MODELS

                data_preprocessor = MODELS.build(data_preprocessor)
            self.data_preprocessor = data_preprocessor
        self.init_cfg = copy.deepcopy(init_cfg)

    def forward(self: Any, inputs: Any, data_samples: list | None = None,
                mode: str = "tensor") -> Any:
        if mode == "loss":
            return self.loss(inputs, data_samples)
        if mode == "predict":
            return self.predict(inputs, data_samples)
        if mode == "tensor":
            return cls.forward(self, inputs, _sizes(data_samples))
        raise ValueError(f"mode={mode!r} is not one of 'loss', 'predict', 'tensor'")

    namespace = {"__init__": __init__, "forward": forward, "__module__": module,
                 "__qualname__": cls.__name__,
                 "__doc__": f"mmengine model of :class:`{cls.__module__}.{cls.__name__}`."}
    return type(cls.__name__, (cls, BaseModel), namespace)


def register_task(module: str, model: type[nn.Module], datasets: Sequence[type] = (),
                  collates: Mapping[str, Callable] | None = None) -> type:
    """Register a task's library pieces under their names: the model (as :func:`engine_model`
    of ``model``, defined in ``module``), its datasets, and its collate functions (looked up as
    ``"pe_dense.<name>"``). Returns the engine model class."""
    from pe_dense.engine.registry import DATASETS, FUNCTIONS, MODELS

    engine_cls = MODELS.register_module(module=engine_model(model, module))
    for dataset in datasets:
        DATASETS.register_module(module=dataset)
    for name, collate in (collates or {}).items():
        FUNCTIONS.register_module(name=name, module=collate)
    return engine_cls
