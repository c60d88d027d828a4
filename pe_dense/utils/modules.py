"""Freezing ``nn.Module``s: one home for "no gradients, and stay in eval mode".

``freeze(module)`` turns off gradients for every parameter and (by default) puts the module in
eval mode *for good*: it replaces the instance's ``train`` with one that always sets eval, so a
parent's ``model.train()`` (which calls ``train(True)`` on every child) leaves the frozen part in
eval mode (no drop path, no dropout, BatchNorm statistics untouched). ``unfreeze`` undoes both.
Nothing changes in the state dict, so checkpoints are unaffected.
"""

from __future__ import annotations

from typing import TypeVar

from torch import nn

__all__ = ["freeze", "unfreeze", "is_frozen"]

M = TypeVar("M", bound=nn.Module)


class _EvalOnlyTrain:
    """The ``train`` of a frozen module: always eval, whatever ``mode`` the parent passes.

    A small callable object (not a bound function) so that the module still deep-copies and
    pickles (``torch.save(model)``) with its frozen behaviour.
    """

    def __init__(self, module: nn.Module) -> None:
        self.module = module

    def __call__(self, mode: bool = True) -> nn.Module:
        return type(self.module).train(self.module, False)


def freeze(module: M, eval_mode: bool = True) -> M:
    """Set ``requires_grad=False`` on every parameter of ``module``; returns ``module``.

    ``eval_mode=True`` also puts the module in eval mode and keeps it there when a parent calls
    ``.train()`` (the instance's ``train`` is replaced; see :func:`unfreeze`). With
    ``eval_mode=False`` only gradients are turned off, and ``train()`` behaves as usual
    (e.g. a frozen backbone whose dropout should still follow the parent).
    """
    module.requires_grad_(False)
    if eval_mode:
        module.train = _EvalOnlyTrain(module)  # type: ignore[method-assign]
        module.train(False)
    return module


def unfreeze(module: M, train_mode: bool | None = None) -> M:
    """Undo :func:`freeze`: gradients on and the class's own ``train`` back.

    ``train_mode``: the mode to set afterwards (None keeps the current one).
    """
    module.requires_grad_(True)
    if isinstance(module.__dict__.get("train"), _EvalOnlyTrain):
        del module.train
    if train_mode is not None:
        module.train(train_mode)
    return module


def is_frozen(module: nn.Module) -> bool:
    """True when no parameter of ``module`` requires gradients (and it has parameters)."""
    params = list(module.parameters())
    return bool(params) and not any(p.requires_grad for p in params)
