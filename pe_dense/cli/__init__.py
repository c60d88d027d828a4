"""The ``pe-dense`` command line: one module per sub-command, parsing and delegating only."""

from pe_dense.cli.main import main

__all__ = ["main"]
