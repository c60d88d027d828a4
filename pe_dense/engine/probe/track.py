"""The tracking probe: DAVIS J&F by label propagation for every swept block, from one backbone
pass per frame (:class:`~pe_dense.tracking.LayerSweepTracker`, the ``pe-dense track --layers``
sweep), scored with the DAVIS-2017 semi-supervised J&F (:mod:`pe_dense.evaluation.davis`)."""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Sequence
from dataclasses import replace

from pe_dense.backbone.contract import Backbone
from pe_dense.data.video import VideoSequence, find_sequences
from pe_dense.engine.probe.settings import ProbeSettings
from pe_dense.tracking import LayerSweepTracker
from pe_dense.tracking.evaluate import track_sequences

__all__ = ["track_probe", "probe_sequences"]

log = logging.getLogger(__name__)

KEYS = ("J&F-Mean", "J-Mean", "F-Mean")


def probe_sequences(settings: ProbeSettings) -> list[VideoSequence]:
    """The fully annotated sequences of ``davis_data`` (or the named ones), each cut to its
    first ``max_frames`` frames (0: all)."""
    sequences = find_sequences(settings.davis_data, settings.sequences)
    scored = [s for s in sequences if s.fully_annotated and len(s) >= 3]
    if not scored:
        raise ValueError(f"no sequence under {settings.davis_data} has ground truth on every "
                         "frame (J&F needs it): use a DAVIS-layout folder with Annotations for "
                         "all frames, e.g. ../shared/data/davis2016")
    if settings.max_frames:
        scored = [replace(s, frames=s.frames[:settings.max_frames],
                          masks={t: p for t, p in s.masks.items() if t < settings.max_frames})
                  for s in scored]
    return scored


def track_probe(backbone: Backbone, indices: Sequence[int], settings: ProbeSettings
                ) -> dict[int, dict[str, float]]:
    """Label propagation with the standard DAVIS settings (7 context frames, top-5, radius 12,
    temperature 0.1) on each block: ``{block: {"J&F-Mean", "J-Mean", "F-Mean"}}`` in [0, 1].
    The predicted masks go to a temporary folder (``pe-dense track`` keeps them)."""
    sequences = probe_sequences(settings)
    tracker = LayerSweepTracker(backbone, list(indices), short_side=settings.track_short_side,
                                norm=settings.norm)
    with tempfile.TemporaryDirectory(prefix="pe-probe-track-") as tmp:
        report = track_sequences(tracker, sequences, tmp)
    log.info("track probe: %d sequences, %d frames", len(sequences), report.frames)
    out = {}
    for i in indices:
        summary = report.summary(i)
        out[i] = {k: float(summary[k]) for k in KEYS}
    return out
