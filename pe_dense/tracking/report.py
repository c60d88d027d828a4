"""What ``pe-dense track`` writes and prints: the run summary (summary.json), the layer sweep
(sweep.csv / sweep.png), the evaluate-only outputs, and the console lines."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from pe_dense.data.video import read_split
from pe_dense.utils.io import atomic_path, atomic_write_text

__all__ = ["select_sequences", "run_summary", "write_run_outputs", "run_lines",
           "evaluate_results", "short_layers"]

SWEEP_KEYS = ["J&F-Mean", "J-Mean", "F-Mean", "J-Recall", "F-Recall", "J-Decay", "F-Decay"]


def select_sequences(data_root: str, sequences: str | None, split: str | None
                     ) -> list[str] | None:
    """Sequence names from a comma-separated ``sequences`` list and/or a DAVIS ``split``
    (their intersection when both are given; None means all)."""
    names = [n.strip() for n in sequences.split(",") if n.strip()] if sequences else None
    if split:
        in_split = read_split(data_root, split)
        names = [n for n in in_split if n in names] if names else in_split
        if not names:
            raise ValueError(f"none of --sequences {sequences} is in split {split}")
    return names


def short_layers(layers: list[int]) -> str:
    """"3,7,11", or "0,1,...,23 (24)" for long lists."""
    return ",".join(map(str, layers)) if len(layers) <= 8 else \
        f"{layers[0]},{layers[1]},...,{layers[-1]} ({len(layers)})"


def run_summary(report: Any, layers: list[int], *, model: str, weights: str | None,
                short_side: int, device: str, propagation: dict[str, Any],
                wall: float) -> dict[str, Any]:
    """summary.json of a tracking run: settings, speed, J&F per layer and per sequence, and
    the best layer. ``report``: :func:`pe_dense.tracking.evaluate.track_sequences`' result."""
    import torch

    from pe_dense.evaluation.davis import sequence_means

    per_layer = {str(i): report.summary(i) for i in layers if report.summary(i)}
    summary = {
        "model": model, "weights": weights, "layers": layers, "short_side": short_side,
        "device": device, "propagation": propagation,
        "frames": report.frames, "tracker_seconds": round(report.seconds, 3),
        "tracker_fps": round(report.fps, 4),
        "tracker_cpu_seconds_per_frame": round(report.cpu_seconds / max(report.frames, 1), 4),
        "torch_threads": torch.get_num_threads(), "wall_seconds": round(wall, 3),
        "unscored_sequences": report.unscored, "per_layer": per_layer,
        "per_sequence": {str(i): sequence_means(report.scores[i]) for i in layers
                         if report.scores.get(i)},
    }
    if per_layer:
        best = max(per_layer, key=lambda k: per_layer[k]["J&F-Mean"])
        summary["best_layer"] = int(best)
        summary["best_JF"] = per_layer[best]["J&F-Mean"]
    return summary


def _write_json(path: Path, data: dict[str, Any]) -> None:
    atomic_write_text(path, json.dumps(data, indent=2) + "\n")


def write_run_outputs(out: str | Path, summary: dict[str, Any], report: Any,
                      layers: list[int], model: str) -> None:
    """summary.json, and with two or more scored layers sweep.csv and sweep.png."""
    from pe_dense.viz.plots import plot_layer_sweep

    out = Path(out)
    _write_json(out / "summary.json", summary)
    rows = [(i, report.summary(i)) for i in layers if report.summary(i)]
    if len(rows) < 2:
        return
    with atomic_path(out / "sweep.csv") as tmp, open(tmp, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["layer"] + SWEEP_KEYS + ["weights"])
        weights = "null" if summary.get("weights") is None else summary["weights"]
        for i, s in rows:
            writer.writerow([i] + [f"{s[k]:.6f}" for k in SWEEP_KEYS] + [weights])
    plot_layer_sweep([i for i, _ in rows], {k: [s[k] for _, s in rows]
                                            for k in ("J&F-Mean", "J-Mean", "F-Mean")},
                     str(out / "sweep.png"), title=f"DAVIS J&F vs layer: {model}")


def run_lines(summary: dict[str, Any], report: Any, layers: list[int]) -> list[str]:
    """The console report of a tracking run: speed, unscored sequences, J&F per layer."""
    lines = [f"tracked {summary['frames']} frames: {summary['tracker_fps']:.3f} frames/s in the "
             f"tracker ({summary['tracker_cpu_seconds_per_frame']:.2f} CPU-s/frame on "
             f"{summary['torch_threads']} threads), {summary['wall_seconds']:.1f} s wall in all"]
    if report.unscored:
        lines.append(f"not scored (no ground truth on every frame): "
                     f"{', '.join(report.unscored)}")
    for layer in layers:
        s = summary["per_layer"].get(str(layer))
        if s:
            lines.append(f"layer {layer:3d}: J&F {s['J&F-Mean']:.4f}  J {s['J-Mean']:.4f}  "
                         f"F {s['F-Mean']:.4f}  ({s['objects']} objects)")
    if "best_layer" in summary and len(layers) > 1:
        lines.append(f"best layer {summary['best_layer']}: J&F {summary['best_JF']:.4f}")
    return lines


def evaluate_results(data_root: str, results: str, out: str | Path,
                     names: list[str] | None, resolution: str = "480p") -> dict[str, Any]:
    """Score existing palette-PNG predictions (``results/<seq>/*.png``) against the ground
    truth; writes results.csv, sequences.csv, global_results.csv and summary.json in ``out``
    and returns the summary."""
    from pe_dense.evaluation.davis import (
        sequence_means,
        summarize,
        write_global_csv,
        write_results_csv,
        write_sequence_csv,
    )
    from pe_dense.tracking.evaluate import evaluate_predictions

    scores = evaluate_predictions(data_root, results, names, resolution)
    out = Path(out)
    summary = {"results": str(results), "global": summarize(scores),
               "per_sequence": sequence_means(scores)}
    write_results_csv(out / "results.csv", scores)
    write_sequence_csv(out / "sequences.csv", scores)
    write_global_csv(out / "global_results.csv", summary["global"])
    _write_json(out / "summary.json", summary)
    return summary
