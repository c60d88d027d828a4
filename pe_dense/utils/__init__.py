"""Small helpers every layer may use: atomic file output (``io``), module freezing (``modules``),
seeded initialisation (``seeding``), device choice (``device``) and the COCO JSON reader
(``coco``). Nothing here imports another pe_dense package."""
