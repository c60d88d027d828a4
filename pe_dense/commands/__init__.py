"""Sub-commands of the ``pe-dense`` CLI (see :mod:`pe_dense.cli`)."""
