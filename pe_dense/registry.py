"""mmengine looks up ``<scope>.registry`` for scoped names (e.g. ``pe_dense.my_collate``); the
registries themselves live in :mod:`pe_dense.engine.registry`."""

from pe_dense.engine.registry import *  # noqa: F401,F403
