"""Frozen-backbone probes of several encoders side by side, behind ``pe-dense probe``.

For each encoder (a PE variant or ``timm/<name>``, built through the backbone contract) and
each task, one frozen-backbone protocol with its layer sweep:

- ``seg``: a linear segmentation probe (the Segmentor's ``LinearHead``: BN + 1x1 conv) per
  block, mIoU on held-out images (:mod:`~pe_dense.engine.probe.dense`);
- ``depth``: a linear depth probe (the DepthEstimator's 256-bin ``LinearBinsHead``) per block,
  RMSE and AbsRel on held-out images (Eigen crop);
- ``track``: DAVIS J&F of label propagation on each block (the tracker's layer sweep,
  :mod:`~pe_dense.engine.probe.track`).

Outputs (:mod:`~pe_dense.engine.probe.report`): one comparison table (best block per task and
encoder), the per-block table, ``probe.json`` and ``probe.png`` (metric against block depth).
Defaults (:class:`~pe_dense.engine.probe.settings.ProbeSettings`) run in minutes on a CPU with
``../shared/data``; the published protocols are the same settings with the full datasets.

This package sits in ``engine/`` because it is the layer that may use the task models and the
tracker together; it imports no mmengine (plain PyTorch loops over frozen features).
"""

from pe_dense.engine.probe.run import PROTOCOLS, run_probe
from pe_dense.engine.probe.settings import METRICS, TASKS, ProbeSettings

__all__ = ["ProbeSettings", "run_probe", "PROTOCOLS", "TASKS", "METRICS"]
