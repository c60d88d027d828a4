"""Small helpers every layer may use: atomic file output (``io``), module freezing (``modules``),
device choice (``device``) and the COCO JSON reader (``coco``). Nothing here imports another
pe_dense package."""
