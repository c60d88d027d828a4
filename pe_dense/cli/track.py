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
import logging
import time

from pe_dense.cli.options import (
    add_device_option,
    add_model_option,
    add_output_option,
    add_weights_option,
)

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-root", required=True, help="DAVIS-layout folder")
    parser.add_argument("--sequences", help="comma-separated names (default: all)")
    parser.add_argument("--split", help="DAVIS split: ImageSets/2017/<split>.txt (e.g. val) or "
                                        "a text file of sequence names")
    parser.add_argument("--resolution", default="480p", help="DAVIS sub-folder (default 480p)")
    add_model_option(parser)
    add_weights_option(parser)
    parser.add_argument("--layer", type=int, default=-1, help="0-based block index, -1 last")
    parser.add_argument("--layers", help="sweep: 'all', 'start:stop[:step]' (stop excluded) or "
                                         "'3,7,11'; one backbone pass per frame for all")
    parser.add_argument("--short-side", type=int, default=480, help="input short side, pixels")
    add_output_option(parser, required=True)
    parser.add_argument("--max-frames", type=int, default=0, metavar="N",
                        help="a quick look: only the first N frames of each sequence (scored "
                             "over those frames)")
    parser.add_argument("--save-video", action="store_true", help="overlay .mp4 per sequence")
    parser.add_argument("--video-fps", type=float, default=10.0)
    add_device_option(parser)
    parser.add_argument("--evaluate", metavar="RESULTS",
                        help="no tracking: score the predictions in RESULTS/<seq>/*.png")
    group = parser.add_argument_group("label propagation (standard DAVIS defaults)")
    group.add_argument("--n-last-frames", type=int, default=7)
    group.add_argument("--topk", type=int, default=5)
    group.add_argument("--neighborhood", type=int, default=12, help="radius in patches, 0 off")
    group.add_argument("--temperature", type=float, default=0.1)
    group.add_argument("--norm", action="store_true", help="apply ln_post (Core models)")


def run(args: argparse.Namespace) -> int:
    from pe_dense.cli.common import now, print_written
    from pe_dense.tracking import report as track_report

    if args.max_frames < 0:
        raise ValueError(f"--max-frames {args.max_frames}: use 0 (all frames) or a positive "
                         "count (sequences under 3 frames are tracked but not scored)")
    started = now()
    names = track_report.select_sequences(args.data_root, args.sequences, args.split)
    if args.evaluate:
        summary = track_report.evaluate_results(args.data_root, args.evaluate, args.out, names,
                                                args.resolution)
        g = summary["global"]
        print(f"{g['objects']} objects in {g['sequences']} sequences: J&F "
              f"{g['J&F-Mean']:.4f}  J {g['J-Mean']:.4f}  F {g['F-Mean']:.4f}")
        code = 0
    else:
        code = _track(args, names)
    print_written(args.out, started)
    return code


def _first_frames(sequences: list, limit: int) -> list:
    """The sequences cut to their first ``limit`` frames (0: unchanged)."""
    from dataclasses import replace

    if not limit:
        return sequences
    return [replace(s, frames=s.frames[:limit], masks={t: p for t, p in s.masks.items()
                                                      if t < limit}) for s in sequences]


def _build(args: argparse.Namespace):
    """The backbone on its device, the layers to track with, and the layer to draw."""
    from pe_dense import create_backbone
    from pe_dense.tracking.evaluate import parse_layers
    from pe_dense.utils.device import pick_device

    device = pick_device(args.device)
    if not args.weights:
        log.warning("no --weights: %s has random weights, J&F will be near chance (videos are "
                    "marked so)", args.model)
    model = create_backbone(args.model, weights=args.weights).eval().to(device)
    if not -model.num_layers <= args.layer < model.num_layers:
        raise ValueError(f"--layer {args.layer} is out of range for {args.model} "
                         f"({model.num_layers} blocks): use 0..{model.num_layers - 1} or negative")
    main_layer = args.layer % model.num_layers
    layers = parse_layers(args.layers, model.num_layers) if args.layers else [main_layer]
    return model, device, layers, main_layer if main_layer in layers else layers[-1]


def _track(args: argparse.Namespace, names: list[str] | None) -> int:
    from tqdm import tqdm

    from pe_dense.data.video import find_sequences
    from pe_dense.tracking import LayerSweepTracker
    from pe_dense.tracking import report as track_report
    from pe_dense.tracking.evaluate import track_sequences

    sequences = _first_frames(find_sequences(args.data_root, names, args.resolution),
                              args.max_frames)
    model, device, layers, video_layer = _build(args)
    propagation = {"n_last_frames": args.n_last_frames, "topk": args.topk,
                   "neighborhood": args.neighborhood, "temperature": args.temperature,
                   "norm": args.norm}
    tracker = LayerSweepTracker(model, layers, short_side=args.short_side, **propagation)
    total = sum(len(s) for s in sequences)
    print(f"{args.model} on {device}: {len(sequences)} sequences, {total} frames, "
          f"layers {track_report.short_layers(layers)}, short side {args.short_side}")
    started = time.perf_counter()
    with tqdm(total=total, unit="frame", dynamic_ncols=True) as bar:
        def on_frame(seq: str, done: int, length: int) -> None:
            bar.set_description(f"{seq} {done}/{length}")
            bar.update(1)

        report = track_sequences(tracker, sequences, args.out,
                                 video_layers=[video_layer] if args.save_video else [],
                                 video_fps=args.video_fps, on_frame=on_frame,
                                 random_weights=not args.weights)
    summary = track_report.run_summary(
        report, layers, model=args.model, weights=args.weights, short_side=args.short_side,
        device=str(device), propagation=propagation, wall=time.perf_counter() - started)
    track_report.write_run_outputs(args.out, summary, report, layers, args.model)
    print("\n".join(track_report.run_lines(summary, report, layers)))
    return 0
