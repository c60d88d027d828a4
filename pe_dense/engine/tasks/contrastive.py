"""mmengine glue for contrastive image-text training (``pe-dense train`` of a CLIP).

Registers, in :mod:`pe_dense.engine.registry` (scope ``pe_dense``):

- ``MODELS``: ``"ContrastiveCLIP"`` (:class:`pe_dense.tasks.open_vocab.contrastive.ContrastiveCLIP`
  as an mmengine model, same state-dict keys) with :class:`CaptionDataPreprocessor` as default;
- ``DATASETS``: ``"CaptionDataset"`` (:class:`pe_dense.data.captions.CaptionDataset`);
- ``METRICS``: ``"RetrievalMetric"``: image <-> caption recall at 1 and 5 over the held-out set;
- ``HOOKS``: ``"ExportCLIPHook"``: writes ``<work_dir>/clip.pt`` (official CLIP layout, for
  ``create_clip`` / ``pe-dense classify`` / ``segment-text`` / ``probe``) at every checkpoint
  and after training.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from mmengine.evaluator import BaseMetric
from mmengine.hooks import Hook
from mmengine.model import BaseDataPreprocessor

from pe_dense.data.captions import CaptionDataset
from pe_dense.engine.adapters import engine_model
from pe_dense.engine.registry import DATASETS, HOOKS, METRICS, MODELS
from pe_dense.tasks.open_vocab.contrastive import ContrastiveCLIP as LibraryContrastiveCLIP
from pe_dense.tasks.open_vocab.contrastive import export_clip, retrieval_metrics

__all__ = ["ContrastiveCLIP", "CaptionDataPreprocessor", "RetrievalMetric", "ExportCLIPHook"]

DATASETS.register_module(module=CaptionDataset)


@MODELS.register_module()
class CaptionDataPreprocessor(BaseDataPreprocessor):
    """A ``default_collate`` batch of :class:`CaptionDataset` items -> ``inputs`` = ``image``
    (B, 3, S, S) uint8 on the device and ``data_samples`` = ``[{"caption": str}, ...]``."""

    def forward(self, data: Mapping[str, Any], training: bool = False) -> dict[str, Any]:
        if "inputs" in data:  # already in the adapter's form
            return self.cast_data(dict(data))
        return {"inputs": self.cast_data(data["image"]),
                "data_samples": [{"caption": c} for c in data["caption"]]}


@MODELS.register_module(name="ContrastiveCLIP")
class ContrastiveCLIP(engine_model(LibraryContrastiveCLIP, __name__)):
    """mmengine model of :class:`pe_dense.tasks.open_vocab.contrastive.ContrastiveCLIP`;
    ``data_preprocessor`` defaults to :class:`CaptionDataPreprocessor`."""

    def __init__(self, *, data_preprocessor: Any = None, **kwargs: Any) -> None:
        super().__init__(data_preprocessor=(CaptionDataPreprocessor() if data_preprocessor is None
                                            else data_preprocessor), **kwargs)


@METRICS.register_module()
class RetrievalMetric(BaseMetric):
    """Image <-> caption recall at 1 and 5 over every held-out pair
    (:func:`pe_dense.tasks.open_vocab.contrastive.retrieval_metrics`)."""

    default_prefix = "retrieval"

    def process(self, data_batch: Any, data_samples: list[dict[str, torch.Tensor]]) -> None:
        self.results.extend(data_samples)

    def compute_metrics(self, results: list[dict[str, torch.Tensor]]) -> dict[str, float]:
        image = torch.stack([r["image_emb"] for r in results])
        text = torch.stack([r["text_emb"] for r in results])
        return retrieval_metrics(image, text)


@HOOKS.register_module()
class ExportCLIPHook(Hook):
    """Write ``<work_dir>/<filename>`` (official CLIP layout) at every checkpoint and after
    training (main process only)."""

    priority = "VERY_LOW"

    def __init__(self, filename: str = "clip.pt") -> None:
        self.filename = filename

    def before_save_checkpoint(self, runner: Any, checkpoint: dict) -> None:
        self._export(runner)

    def after_train(self, runner: Any) -> None:
        self._export(runner)

    def _export(self, runner: Any) -> None:
        from mmengine.dist import is_main_process

        if is_main_process():
            model = getattr(runner.model, "module", runner.model)
            path = export_clip(model, Path(runner.work_dir) / self.filename)
            runner.logger.info(f"CLIP checkpoint: {path} (create_clip('{model.variant}', "
                               f"weights='{path}'), pe-dense classify --model {model.variant} "
                               f"--weights {path})")
