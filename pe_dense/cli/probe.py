"""Compare encoders with frozen-backbone probes, each with its layer sweep: linear segmentation
(mIoU), linear depth (RMSE, AbsRel) and DAVIS label propagation (J&F), for every block.

Writes OUT/probe.json (every block of every encoder, settings, timings, machine load),
OUT/probe.md (the comparison table: best block per task, then every block) and OUT/probe.png
(metric against block depth, one line per encoder, one panel per task). Without --weights the
encoders have random weights, and every output says so.

The defaults run in minutes on a CPU with ../shared/data (CamVid 20 + 10 frames, NYU mini 7 + 3,
DAVIS-2016 blackswan and car-shadow cut to 20 frames, short side 224, 200 head steps):
  pe-dense probe --backbones PE-Spatial-T16-512,timm/vit_small_patch16_dinov3 --out probe/
Every other block, two tasks:
  pe-dense probe --backbones PE-Spatial-B16-512,timm/vit_base_patch14_dinov2 --layers ::2 \\
      --tasks seg,track --out probe_b/
The published protocols (a GPU; ADE20K, NYUv2 splits, DAVIS-2017 val at 480 px):
  pe-dense probe --backbones PE-Spatial-B16-512,timm/vit_base_patch16_dinov3 \\
      --weights PE-Spatial-B16-512.pt,dinov3_vitb16.pth \\
      --seg-data data/ADEChallengeData2016 --short-side 512 --iters 40000 --batch-size 16 \\
      --depth-data data/nyu --depth-splits nyu_train.txt,nyu_test.txt --depth-upsample 4 \\
      --davis data/DAVIS --sequences bike-packing,blackswan,... --track-short-side 480 \\
      --max-frames 0 --out probe_full/
"""

from __future__ import annotations

import argparse
from pathlib import Path

from pe_dense.cli.options import add_device_option, add_output_option

DATA = Path("../shared/data")


def _csv(text: str) -> list[str]:
    return [v.strip() for v in text.split(",")]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--backbones", required=True, type=_csv,
                        help="comma list of PE variants and timm/<model name> encoders")
    parser.add_argument("--weights", type=_csv, default=None,
                        help="one checkpoint per backbone, comma separated, empty for random "
                             "weights (e.g. ',dinov3.pth'); default: all random")
    parser.add_argument("--tasks", type=_csv, default=["seg", "depth", "track"],
                        help="comma list of seg, depth, track (default all)")
    parser.add_argument("--layers", default="all",
                        help="blocks swept per encoder: all, start:stop[:step] (e.g. ::2, "
                             "every other block) or 3,7,-1 (default all)")
    parser.add_argument("--short-side", type=int, default=224,
                        help="seg and depth images: short side in pixels (default 224)")
    parser.add_argument("--norm", action="store_true",
                        help="apply each encoder's final norm to every block")
    add_output_option(parser, default="work_dirs/probe")
    add_device_option(parser)
    _add_data_arguments(parser)
    _add_head_arguments(parser)


def _add_data_arguments(parser: argparse.ArgumentParser) -> None:
    data = parser.add_argument_group("data (default: the samples in ../shared/data)")
    data.add_argument("--data", default=str(DATA),
                      help="folder holding camvid_val, nyu_mini and davis2016 "
                           "(default %(default)s)")
    data.add_argument("--seg-data", help="ADE20K root (ADEChallengeData2016); a root with "
                                         "train/ and test/ (or val/) folders of images/ and "
                                         "labels/ (train on train/, score on test/); or one "
                                         "folder of images/ and labels/, its last files held "
                                         "out (default DATA/camvid_val)")
    data.add_argument("--seg-classes", type=int, default=11,
                      help="classes of a label folder (default 11: CamVid)")
    data.add_argument("--seg-ignore-index", type=int, default=11,
                      help="void label of a label folder (default 11: CamVid)")
    data.add_argument("--depth-data", help="NYU folder of image_K/depth_K PNGs, or the root of "
                                           "--depth-splits (default DATA/nyu_mini)")
    data.add_argument("--depth-splits", type=_csv, metavar="TRAIN,TEST",
                      help="split files (lines: rgb depth [focal]) under --depth-data")
    data.add_argument("--depth-upsample", type=int, default=1,
                      help="depth head's logit upsampling before the expectation over bins "
                           "(4: DINOv2's linear head, ~7x slower on a CPU; default 1)")
    data.add_argument("--davis", help="DAVIS-layout root (default DATA/davis2016)")
    data.add_argument("--sequences", type=_csv, help="DAVIS sequences (default: all scored)")
    data.add_argument("--max-frames", type=int, default=20,
                      help="frames per sequence, 0 all (default 20)")
    data.add_argument("--track-short-side", type=int, default=224,
                      help="tracking frames: short side in pixels (default 224; DAVIS: 480)")
    data.add_argument("--eval-fraction", type=float, default=1 / 3,
                      help="share of a folder held out for scoring (default 1/3: the last files)")
    data.add_argument("--max-train", type=int, default=0, help="cap training images (0: all)")
    data.add_argument("--max-eval", type=int, default=0, help="cap scored images (0: all)")


def _add_head_arguments(parser: argparse.ArgumentParser) -> None:
    heads = parser.add_argument_group("head training (one linear head per block, frozen backbone)")
    heads.add_argument("--iters", type=int, default=200, help="AdamW steps (default 200)")
    heads.add_argument("--batch-size", type=int, default=4)
    heads.add_argument("--lr", type=float, default=1e-3)
    heads.add_argument("--weight-decay", type=float, default=1e-4)
    heads.add_argument("--seed", type=int, default=0)
    heads.add_argument("--cache-mb", type=int, default=4096,
                       help="training features kept in memory up to this size (default 4096)")


def settings_from(args: argparse.Namespace):
    """The library's ProbeSettings from the parsed options."""
    from pe_dense.engine.probe import ProbeSettings

    data = Path(args.data)
    if args.depth_splits is not None and len(args.depth_splits) != 2:
        raise ValueError("--depth-splits takes two files: TRAIN,TEST")
    return ProbeSettings(
        backbones=args.backbones, tasks=tuple(args.tasks), weights=args.weights,
        layers=args.layers, short_side=args.short_side, norm=args.norm,
        seg_data=args.seg_data or str(data / "camvid_val"), seg_num_classes=args.seg_classes,
        seg_ignore_index=args.seg_ignore_index,
        depth_data=args.depth_data or str(data / "nyu_mini"),
        depth_splits=tuple(args.depth_splits) if args.depth_splits else None,
        depth_upsample=args.depth_upsample,
        davis_data=args.davis or str(data / "davis2016"), sequences=args.sequences,
        track_short_side=args.track_short_side, max_frames=args.max_frames,
        eval_fraction=args.eval_fraction, max_train=args.max_train, max_eval=args.max_eval,
        iters=args.iters, batch_size=args.batch_size, lr=args.lr,
        weight_decay=args.weight_decay, seed=args.seed, cache_mb=args.cache_mb,
        device=args.device)


def run(args: argparse.Namespace) -> int:
    from pe_dense.cli.common import now, print_written
    from pe_dense.engine.probe import run_probe
    from pe_dense.engine.probe.report import format_blocks, format_summary

    settings = settings_from(args)
    settings.check_data()
    started = now()
    stages = [(b, t) for b in settings.backbones for t in settings.tasks]
    print(f"probe: {len(settings.backbones)} encoders x {len(settings.tasks)} tasks, blocks "
          f"{settings.layers}, short side {settings.short_side}, {settings.iters} head steps")

    def on_stage(encoder: str, task: str) -> None:
        print(f"[{stages.index((encoder, task)) + 1}/{len(stages)}] {encoder}: {task}",
              flush=True)

    result = run_probe(settings, args.out, on_stage)
    print(format_blocks(result))
    print()
    print(format_summary(result))
    if any(e["random_weights"] for e in result["encoders"]):
        print("(random weights: the numbers show that the protocol runs, not what the encoders "
              "can do)")
    print(f"{result['seconds']:.0f} s, load {result['machine']['load_start'][0]:.1f} -> "
          f"{result['machine']['load_end'][0]:.1f}")
    print_written(args.out, started)
    return 0
