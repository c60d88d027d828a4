"""Small helpers every layer may use: file output (:mod:`pe_dense.utils.io`) and module
freezing (:mod:`pe_dense.utils.modules`). Nothing here imports another pe_dense package."""
