"""Task models in plain PyTorch, one package per task with the same layout (``model``, ``heads``,
``losses`` where the task has its own): ``detection`` (Mask R-CNN), ``segmentation`` (probe,
UPerNet), ``depth`` (DPT, linear bins). ``common`` holds what segmentation and depth share.
Every model exposes its stages ``preprocess`` -> ``encode`` -> ``decode`` plus ``loss``,
``predict`` and ``predict_images``; mmengine wrappers live in :mod:`pe_dense.engine.tasks`."""
