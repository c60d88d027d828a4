"""Offline tracking over a DAVIS-layout folder: masks, J&F, layer sweeps, overlay videos.

``track_sequences`` runs a :class:`LayerSweepTracker` (one backbone pass per frame for all
layers) over each sequence and streams every frame to the outputs, so memory stays bounded:

* fully annotated sequences (ground truth on every frame) are tracked from the first mask only
  and scored with the DAVIS-2017 semi-supervised J&F (:mod:`pe_dense.evaluation.davis`);
* sparsely annotated ones (e.g. test-dev, or masks only where objects appear) are tracked with
  each available mask fed to the tracker on its frame (objects appearing later), and not scored.

Output layout under ``out`` for one layer (a sweep puts each layer's files in ``layer_<L>/``,
``<L>`` the 0-based block index, and names videos ``<seq>_layer_<L>.mp4``)::

    masks/<seq>/<frame>.png   palette PNGs (the DAVIS results layout)
    results.csv               one row per object (the DAVIS "per-sequence" table)
    sequences.csv             one row per sequence (mean over its objects)
    global_results.csv        the DAVIS global table
    videos/<seq>.mp4          overlays (optional)
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from pe_dense.data.images import read_rgb
from pe_dense.data.video import (
    VideoSequence,
    VideoWriter,
    davis_palette,
    find_sequences,
    read_mask,
    write_mask,
)
from pe_dense.evaluation.davis import (
    ObjectScore,
    SequenceScorer,
    summarize,
    write_global_csv,
    write_results_csv,
    write_sequence_csv,
)
from pe_dense.tracking.tracker import LayerSweepTracker

__all__ = ["TrackReport", "track_sequences", "evaluate_predictions", "parse_layers",
           "layer_dir"]

log = logging.getLogger(__name__)

FrameCallback = Callable[[str, int, int], None]


@dataclass
class TrackReport:
    """What a run produced: object scores per layer, timings and the files written."""

    layers: list[int]
    scores: dict[int, list[ObjectScore]] = field(default_factory=dict)
    frames: int = 0
    seconds: float = 0.0  # wall time inside the tracker (features + propagation), no file I/O
    cpu_seconds: float = 0.0  # process CPU time (all threads) over the same spans
    unscored: list[str] = field(default_factory=list)

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds else 0.0

    def summary(self, layer: int) -> dict[str, float] | None:
        """DAVIS global numbers of one layer, or None when no sequence was scored."""
        return summarize(self.scores[layer]) if self.scores.get(layer) else None


def layer_dir(out: str | Path, layer: int, sweep: bool = True) -> Path:
    """The output folder of one layer: ``out/layer_<L>`` in a sweep, else ``out``."""
    return Path(out) / f"layer_{layer:02d}" if sweep else Path(out)


def parse_layers(spec: str, num_layers: int) -> list[int]:
    """``"all"``, a Python slice ``"start:stop[:step]"`` over 0..num_layers-1 (stop excluded,
    negatives from the end) or a comma list ``"3,7,-1"`` -> sorted unique 0-based indices."""
    spec = spec.strip()
    every = list(range(num_layers))
    try:
        if spec == "all":
            chosen = every
        elif ":" in spec:
            parts = [int(p) if p.strip() else None for p in spec.split(":")]
            if len(parts) > 3:
                raise ValueError
            chosen = every[slice(*parts)]
        else:
            chosen = [every[int(p)] for p in spec.split(",")]
    except (ValueError, IndexError):
        raise ValueError(f"--layers {spec!r}: use 'all', 'start:stop[:step]' or '3,7,11' with "
                         f"indices in 0..{num_layers - 1} (or negative)") from None
    if not chosen:
        raise ValueError(f"--layers {spec!r} selects no layer of a {num_layers}-block model")
    return sorted(set(chosen))


def _read_checked(path: Path, size: tuple[int, int]) -> np.ndarray:
    mask = read_mask(path)
    if mask.shape != size:
        raise ValueError(f"mask {path} is {mask.shape[1]}x{mask.shape[0]} (WxH) but its frame is "
                         f"{size[1]}x{size[0]}: masks must have the frame's size")
    return mask


def _overlay(frame: np.ndarray, labels: np.ndarray, random_weights: bool = False) -> np.ndarray:
    """The masks over the frame, with the random-weights banner when the model is random."""
    from pe_dense.viz.banner import mark_random
    from pe_dense.viz.overlays import overlay_labels

    palette = np.asarray(davis_palette(), np.uint8).reshape(256, 3)
    return mark_random(overlay_labels(frame, labels, palette, alpha=0.5, ignore=0),
                       random_weights, inplace=True)


def _track_one(tracker: LayerSweepTracker, seq: VideoSequence, out: Path, report: TrackReport,
               video_layers: Sequence[int], video_fps: float,
               on_frame: FrameCallback | None, random_weights: bool = False) -> None:
    first = read_rgb(seq.frames[0])
    size = first.shape[:2]
    first_mask = _read_checked(seq.masks[0], size)
    scorers = None
    if seq.fully_annotated and len(seq) >= 3:
        scorers = {i: SequenceScorer(seq.name, len(seq), first_mask) for i in tracker.layers}
    else:
        report.unscored.append(seq.name)
    sweep = len(tracker.layers) > 1
    videos = {i: VideoWriter(out / "videos" / (f"{seq.name}_layer_{i:02d}.mp4" if sweep
                                               else f"{seq.name}.mp4"), video_fps)
              for i in video_layers}
    try:
        for t, path in enumerate(seq.frames):
            frame = first if t == 0 else read_rgb(path)
            if frame.shape[:2] != size:
                raise ValueError(f"frame {path} is {frame.shape[1]}x{frame.shape[0]} but the "
                                 f"sequence started at {size[1]}x{size[0]}")
            mask = (first_mask if t == 0 else _read_checked(seq.masks[t], size)
                    if t in seq.masks else None)
            given = None if mask is None else np.where(mask == 255, 0, mask)  # void -> bg
            start, cpu = time.perf_counter(), time.process_time()
            if t == 0:
                preds = tracker.reset(frame, given)
            else:
                preds = tracker.update(frame, masks=None if scorers else given)
            report.seconds += time.perf_counter() - start
            report.cpu_seconds += time.process_time() - cpu
            report.frames += 1
            for layer, pred in preds.items():
                folder = layer_dir(out, layer, sweep) / "masks" / seq.name
                write_mask(folder / f"{path.stem}.png", pred)
                if scorers:
                    scorers[layer].add(mask, pred)
                if layer in videos:
                    videos[layer].write(_overlay(frame, pred, random_weights))
            if on_frame:
                on_frame(seq.name, t + 1, len(seq))
    except BaseException:
        for v in videos.values():
            v.abort()
        raise
    for v in videos.values():
        v.close()
    if scorers:
        for layer, scorer in scorers.items():
            report.scores.setdefault(layer, []).extend(scorer.scores())


def track_sequences(tracker: LayerSweepTracker, sequences: Sequence[VideoSequence],
                    out: str | Path, video_layers: Sequence[int] = (), video_fps: float = 10.0,
                    on_frame: FrameCallback | None = None, random_weights: bool = False
                    ) -> TrackReport:
    """Track every sequence, write masks (and videos), score what has full ground truth.

    tracker: its ``layers`` must be 0-based (non-negative) indices, as ``parse_layers`` gives.
    video_layers: layers to draw overlay videos for. on_frame(seq, done, total): progress.
    random_weights: the model was not loaded; its overlay videos carry the banner.
    Writes each layer's ``results.csv`` and ``global_results.csv`` when anything was scored.
    """
    if any(i < 0 for i in tracker.layers):
        raise ValueError(f"use 0-based layer indices for output folders, got {tracker.layers}")
    out = Path(out)
    report = TrackReport(layers=list(tracker.layers))
    for seq in sequences:
        log.info("tracking %s (%d frames, %d annotated)", seq.name, len(seq), len(seq.masks))
        _track_one(tracker, seq, out, report, video_layers, video_fps, on_frame, random_weights)
    sweep = len(tracker.layers) > 1
    for layer in tracker.layers:
        if report.scores.get(layer):
            folder = layer_dir(out, layer, sweep)
            write_results_csv(folder / "results.csv", report.scores[layer])
            write_sequence_csv(folder / "sequences.csv", report.scores[layer])
            write_global_csv(folder / "global_results.csv", summarize(report.scores[layer]))
    if report.unscored:
        log.info("not scored (ground truth not on every frame): %s", ", ".join(report.unscored))
    return report


def evaluate_predictions(data_root: str | Path, results: str | Path,
                         names: list[str] | None = None, resolution: str = "480p"
                         ) -> list[ObjectScore]:
    """Score existing palette-PNG predictions ``results/<seq>/<frame>.png`` (any method) against
    the ground truth of a DAVIS-layout ``data_root``. Returns object scores (see ``summarize``,
    ``sequence_means``)."""
    results = Path(results)
    scores: list[ObjectScore] = []
    for seq in find_sequences(data_root, names, resolution):
        if not seq.fully_annotated:
            raise ValueError(f"sequence {seq.name} has no ground truth on every frame: it cannot "
                             "be scored")
        gt0 = read_mask(seq.masks[0])
        scorer = SequenceScorer(seq.name, len(seq), gt0)
        for t, frame in enumerate(seq.frames):
            path = results / seq.name / f"{frame.stem}.png"
            if not path.is_file():
                raise FileNotFoundError(f"prediction {path} is missing")
            scorer.add(read_mask(seq.masks[t]), read_mask(path))
        scores.extend(scorer.scores())
    return scores

