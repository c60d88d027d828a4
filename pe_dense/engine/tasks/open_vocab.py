"""mmengine glue for the text-to-patch bridge (open-vocabulary segmentation).

Registers, in :mod:`pe_dense.engine.registry` (scope ``pe_dense``): the model
``BridgeSegmenter`` (:class:`pe_dense.tasks.open_vocab.bridge.BridgeSegmenter` as an mmengine
``BaseModel``), the dataset ``CocoSemanticDataset`` (COCO instances as semantic maps: masks or
boxes, class names from the categories) and the hook ``SaveBridgeHook``, which writes
``work_dir/bridge.pth`` (:func:`pe_dense.tasks.open_vocab.bridge.save_bridge`) after every
validation and at the end of training, for ``pe-dense segment-text --bridge``. Evaluation uses
``SegIoUMetric`` and ``pe_dense.seg_collate`` from :mod:`pe_dense.engine.tasks.segmentation`.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from mmengine.hooks import Hook

from pe_dense.data.coco_semantic import CocoSemanticDataset
from pe_dense.engine.adapters import register_task
from pe_dense.engine.registry import HOOKS
from pe_dense.tasks.open_vocab.bridge import BridgeSegmenter as LibraryBridgeSegmenter
from pe_dense.tasks.open_vocab.bridge import save_bridge

__all__ = ["BridgeSegmenter", "SaveBridgeHook"]

log = logging.getLogger(__name__)

BridgeSegmenter = register_task(__name__, LibraryBridgeSegmenter, datasets=(CocoSemanticDataset,))


@HOOKS.register_module()
class SaveBridgeHook(Hook):
    """Write the bridge file ``work_dir/<filename>`` after each validation and after training."""

    priority = "LOW"

    def __init__(self, filename: str = "bridge.pth") -> None:
        self.filename = filename

    def _save(self, runner: Any) -> None:
        model = getattr(runner.model, "module", runner.model)
        path = Path(runner.work_dir) / self.filename
        save_bridge(model, path)
        log.info("bridge written to %s", path)

    def after_val_epoch(self, runner: Any, metrics: dict | None = None) -> None:
        self._save(runner)

    def after_train(self, runner: Any) -> None:
        self._save(runner)
