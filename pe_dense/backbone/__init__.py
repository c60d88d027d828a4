"""The PE vision tower and everything about it: ``pe_vit`` (PEViT, forward_features /
forward_intermediates, take_indices, the lr-decay layer rule), ``rope``, ``variants`` (the
official variant table and the ViTDet presets, as data), ``factory`` (create_backbone),
``inputs`` (the uint8 input contract and ``normalize``), ``layouts`` and ``weights`` (every
checkpoint layout, conversion and the one strict-load report). Imports only ``pe_dense.utils``."""
