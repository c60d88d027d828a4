"""Spatial-alignment distillation (PE-Spatial recipe, paper section 5).

Modules: ``losses`` (cosine and locality losses, pairwise correlation), ``masking`` (2 x 2
token-block masking), ``views`` (crops/flips shared by images and targets), ``teachers``
(PE layer teacher; SAM 2 in :mod:`pe_dense.integrations.sam2`), ``cache`` (sharded float16
targets on disk), ``data`` (image and video-frame folders), ``student`` (build / export),
``model`` (the mmengine task), ``runtime`` (metric, export hook, LAMB) and ``evaluate``.
Nothing is imported or registered at ``import pe_dense.distill``; configs list the modules in
``custom_imports``.
"""
