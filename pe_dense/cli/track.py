"""Track objects through DAVIS-layout videos by label propagation on PE features; J&F, sweeps.

Writes palette-PNG masks (the DAVIS results layout), results.csv (one row per object),
sequences.csv (one per sequence), global_results.csv and summary.json; with --layers, one
backbone pass per frame feeds every layer and sweep.csv / sweep.png show J&F against layer;
--save-video draws overlays (OpenCV).
Sequences with ground truth on every frame are tracked from the first mask and scored with the
DAVIS-2017 semi-supervised J&F; others are tracked with every given mask and not scored.
With --evaluate RESULTS it only scores existing palette-PNG predictions (RESULTS/<seq>/*.png,
from any method) against the ground truth. Without --weights the model has random weights.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-root", required=True, help="DAVIS-layout folder")
    parser.add_argument("--sequences", help="comma-separated names (default: all)")
    parser.add_argument("--split", help="DAVIS split: ImageSets/2017/<split>.txt (e.g. val) or "
                                        "a text file of sequence names")
    parser.add_argument("--resolution", default="480p", help="DAVIS sub-folder (default 480p)")
    parser.add_argument("--model", default="PE-Spatial-T16-512", help="PE variant name")
    parser.add_argument("--weights", help="checkpoint path or hf://facebook/NAME")
    parser.add_argument("--layer", type=int, default=-1, help="0-based block index, -1 last")
    parser.add_argument("--layers", help="sweep: 'all', 'start:stop[:step]' (stop excluded) or "
                                         "'3,7,11'; one backbone pass per frame for all")
    parser.add_argument("--short-side", type=int, default=480, help="input short side, pixels")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--save-video", action="store_true", help="overlay .mp4 per sequence")
    parser.add_argument("--video-fps", type=float, default=10.0)
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, ...")
    parser.add_argument("--evaluate", metavar="RESULTS",
                        help="no tracking: score the predictions in RESULTS/<seq>/*.png")
    group = parser.add_argument_group("label propagation (standard DAVIS defaults)")
    group.add_argument("--n-last-frames", type=int, default=7)
    group.add_argument("--topk", type=int, default=5)
    group.add_argument("--neighborhood", type=int, default=12, help="radius in patches, 0 off")
    group.add_argument("--temperature", type=float, default=0.1)
    group.add_argument("--norm", action="store_true", help="apply ln_post (Core models)")


def run(args: argparse.Namespace) -> int:
    import torch
    from tqdm import tqdm

    from pe_dense import create_backbone
    from pe_dense.data.video import find_sequences, read_split
    from pe_dense.tracking import LayerSweepTracker
    from pe_dense.tracking.evaluate import parse_layers, track_sequences

    names = [n.strip() for n in args.sequences.split(",") if n.strip()] if args.sequences else None
    if args.split:
        split = read_split(args.data_root, args.split)
        names = [n for n in split if n in names] if names else split
        if not names:
            raise ValueError(f"none of --sequences {args.sequences} is in split {args.split}")
    if args.evaluate:
        return _evaluate_only(args, names)
    sequences = find_sequences(args.data_root, names, args.resolution)
    device = _device(args.device, torch)
    if not args.weights:
        log.warning("no --weights: %s has random weights, J&F will be near chance", args.model)
    model = create_backbone(args.model, weights=args.weights).eval().to(device)
    if not -model.num_layers <= args.layer < model.num_layers:
        raise ValueError(f"--layer {args.layer} is out of range for {args.model} "
                         f"({model.num_layers} blocks): use 0..{model.num_layers - 1} or negative")
    main_layer = args.layer % model.num_layers
    layers = parse_layers(args.layers, model.num_layers) if args.layers else [main_layer]
    video_layer = main_layer if main_layer in layers else layers[-1]
    tracker = LayerSweepTracker(model, layers, short_side=args.short_side,
                                n_last_frames=args.n_last_frames, topk=args.topk,
                                neighborhood=args.neighborhood, temperature=args.temperature,
                                norm=args.norm)
    total = sum(len(s) for s in sequences)
    print(f"{args.model} on {device}: {len(sequences)} sequences, {total} frames, "
          f"layers {_short(layers)}, short side {args.short_side}")
    bar = tqdm(total=total, unit="frame", dynamic_ncols=True)
    started = time.perf_counter()

    def on_frame(seq: str, done: int, length: int) -> None:
        bar.set_description(f"{seq} {done}/{length}")
        bar.update(1)

    try:
        report = track_sequences(tracker, sequences, args.out,
                                 video_layers=[video_layer] if args.save_video else [],
                                 video_fps=args.video_fps, on_frame=on_frame)
    finally:
        bar.close()
    wall = time.perf_counter() - started
    summary = _summary(args, report, layers, str(device), wall)
    _write_outputs(Path(args.out), summary, report, layers, args.model)
    _print(summary, report, layers)
    return 0


def _evaluate_only(args: argparse.Namespace, names: list[str] | None) -> int:
    from pe_dense.data.video import atomic_write
    from pe_dense.evaluation.davis import (
        sequence_means,
        summarize,
        write_global_csv,
        write_results_csv,
        write_sequence_csv,
    )
    from pe_dense.tracking.evaluate import evaluate_predictions

    scores = evaluate_predictions(args.data_root, args.evaluate, names, args.resolution)
    out = Path(args.out)
    summary = {"results": str(args.evaluate), "global": summarize(scores),
               "per_sequence": sequence_means(scores)}
    write_results_csv(out / "results.csv", scores)
    write_sequence_csv(out / "sequences.csv", scores)
    write_global_csv(out / "global_results.csv", summary["global"])
    atomic_write(out / "summary.json",
                 lambda tmp: tmp.write_text(json.dumps(summary, indent=2) + "\n"))
    g = summary["global"]
    print(f"{g['objects']} objects in {g['sequences']} sequences: J&F {g['J&F-Mean']:.4f}  "
          f"J {g['J-Mean']:.4f}  F {g['F-Mean']:.4f}  -> {out}")
    return 0


def _device(name: str, torch):
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"--device {name}: no CUDA device here; use --device cpu")
    return device


def _short(layers: list[int]) -> str:
    return ",".join(map(str, layers)) if len(layers) <= 8 else \
        f"{layers[0]},{layers[1]},...,{layers[-1]} ({len(layers)})"


def _summary(args, report, layers: list[int], device: str, wall: float) -> dict:
    import torch

    from pe_dense.evaluation.davis import sequence_means

    per_layer = {str(i): report.summary(i) for i in layers if report.summary(i)}
    summary = {
        "model": args.model, "weights": args.weights, "layers": layers,
        "short_side": args.short_side, "device": device,
        "propagation": {"n_last_frames": args.n_last_frames, "topk": args.topk,
                        "neighborhood": args.neighborhood, "temperature": args.temperature,
                        "norm": args.norm},
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


def _write_outputs(out: Path, summary: dict, report, layers: list[int], model: str) -> None:
    import csv

    from pe_dense.data.video import atomic_write

    atomic_write(out / "summary.json",
                 lambda tmp: tmp.write_text(json.dumps(summary, indent=2) + "\n"))
    scored = [i for i in layers if report.summary(i)]
    if len(scored) < 2:
        return
    rows = [(i, report.summary(i)) for i in scored]
    keys = ["J&F-Mean", "J-Mean", "F-Mean", "J-Recall", "F-Recall", "J-Decay", "F-Decay"]

    def write_csv(tmp: Path) -> None:
        with open(tmp, "w", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(["layer"] + keys)
            for i, s in rows:
                writer.writerow([i] + [f"{s[k]:.6f}" for k in keys])

    atomic_write(out / "sweep.csv", write_csv)
    from pe_dense.viz.drawing import plot_layer_sweep

    plot_layer_sweep([i for i, _ in rows], {k: [s[k] for _, s in rows]
                                            for k in ("J&F-Mean", "J-Mean", "F-Mean")},
                     str(out / "sweep.png"), title=f"DAVIS J&F vs layer: {model}")


def _print(summary: dict, report, layers: list[int]) -> None:
    print(f"tracked {summary['frames']} frames: {summary['tracker_fps']:.3f} frames/s in the "
          f"tracker ({summary['tracker_cpu_seconds_per_frame']:.2f} CPU-s/frame on "
          f"{summary['torch_threads']} threads), {summary['wall_seconds']:.1f} s wall in all")
    if report.unscored:
        print(f"not scored (no ground truth on every frame): {', '.join(report.unscored)}")
    for layer in layers:
        s = summary["per_layer"].get(str(layer))
        if s:
            print(f"layer {layer:3d}: J&F {s['J&F-Mean']:.4f}  J {s['J-Mean']:.4f}  "
                  f"F {s['F-Mean']:.4f}  ({s['objects']} objects)")
    if "best_layer" in summary and len(layers) > 1:
        print(f"best layer {summary['best_layer']}: J&F {summary['best_JF']:.4f}")
