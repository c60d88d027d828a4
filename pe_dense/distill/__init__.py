"""Spatial-alignment distillation (PE-Spatial recipe, paper section 5), plain PyTorch.

Modules: ``losses`` (cosine and locality losses, pairwise correlation), ``masking`` (2 x 2
token-block masking), ``views`` (crops/flips shared by images and targets), ``teachers``
(PE layer teacher, ``build_teacher``), ``prompt_teacher`` (the point-prompt mask teachers' base),
``sam2_teacher`` (the SAM 2 teacher class; the network is built by
:mod:`pe_dense.integrations.sam2`), ``gt_teacher`` (ground-truth instance masks answering the
same prompts: a perfect SAM, cached only), ``images`` (image folders, base-size reading),
``cache`` (sharded float16 targets on disk), ``data`` (the dataset, uint8 base images),
``student`` (build / export), ``model`` (the task model) and ``evaluate``.
The mmengine registrations, metric, export hook and LAMB live in
:mod:`pe_dense.engine.tasks.distill`. Nothing is imported at ``import pe_dense.distill``.
"""
