"""Run a trained model on your own data: images, folders, globs, videos and .txt lists in; the
task's standard result files, drawings and a summary out.

Examples::

    pe-dense predict CONFIG CKPT photos/ clip.mp4 --out preds/              # det: results.json
    pe-dense predict CONFIG CKPT big.tif --out preds/ --slice 512 --overlap 0.2
    pe-dense predict CONFIG CKPT list.txt --out preds/ --skip-existing       # resume
    pe-dense predict hf://owner/repo photos/ --out preds/     # a shared model: no CKPT
    torchrun --nproc_per_node 4 tools/predict.py CONFIG CKPT photos/ --out preds/

Exit codes: 0 every input predicted; 1 some inputs failed (listed in OUT/failed.txt, the others
were written); 2 bad command line, config, checkpoint or no inputs (nothing predicted); 3 no
input could be predicted.
"""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING

from pe_dense.cli.options import (
    add_cfg_options,
    add_device_option,
    add_output_option,
    add_runtime_options,
    open_runtime,
)

if TYPE_CHECKING:
    from pe_dense.engine.predict_run import PredictOptions

log = logging.getLogger(__name__)

EXIT_SOME_FAILED, EXIT_ALL_FAILED = 1, 3


def add_arguments(parser: argparse.ArgumentParser) -> None:
    _add_inputs(parser)
    _add_outputs(parser)
    add_runtime_options(parser, "this config's network exported with pe-dense export CONFIG "
                          "--checkpoint CKPT --dynamic")


def _add_inputs(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", help="mmengine Python config the model was trained with, or "
                        "a model repository (hf://owner/repo, or a folder with config.py and "
                        "model.safetensors from pe-dense push): then no CHECKPOINT follows")
    parser.add_argument("checkpoint", help="checkpoint saved by pe-dense train")
    parser.add_argument("inputs", nargs="*", metavar="INPUT",
                        help="image files, folders (recursive), globs ('photos/**/*.jpg'), "
                        "videos (every frame) and .txt lists of paths, in any mix")
    add_output_option(parser, required=True)
    parser.add_argument("--batch-size", type=int, default=1,
                        help="images per forward pass (default %(default)s)")
    parser.add_argument("--workers", type=int, default=2,
                        help="DataLoader processes decoding inputs (0: in the main process; "
                        "default %(default)s)")
    parser.add_argument("--every", type=int, default=1, metavar="N",
                        help="videos: predict every N-th frame (default every frame)")
    add_device_option(parser)  # under torchrun each process takes cuda:LOCAL_RANK
    add_cfg_options(parser)
    parser.add_argument("--max-pixels", type=int, default=None,
                        help="refuse images with more pixels (default: PIL's bomb limit, "
                        "about 179 M)")
    parser.add_argument("--max-aspect", type=float, default=None,
                        help="refuse images whose long/short side ratio is over this "
                        "(default 100)")


def _add_outputs(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--format", default="auto", choices=("auto", "coco"),
                        help="result files: the task's standard ones (detection: COCO "
                        "results JSON; segmentation: PNG label maps; depth: 16-bit PNG in mm)")
    parser.add_argument("--ann-file", help="detection: a COCO annotation file whose image and "
                        "category ids results.json uses (default: the config's test dataset's, "
                        "when every input is one of its images)")
    parser.add_argument("--score-threshold", type=float, default=0.5,
                        help="detections below this score are not drawn (results.json keeps "
                        "every detection the model outputs; default %(default)s)")
    parser.add_argument("--save-logits", action="store_true",
                        help="segmentation: also write pred/<name>.npz with the logits")
    parser.add_argument("--save-raw", action="store_true",
                        help="depth: also write pred/<name>.npy with float32 metres")
    parser.add_argument("--no-draw", dest="draw", action="store_false",
                        help="do not write vis/ drawings (and annotated videos)")
    parser.add_argument("--slice", type=int, default=0, metavar="SIZE",
                        help="large images: detection on SIZE x SIZE tiles plus the whole image, "
                        "merged (SAHI style); segmentation / depth by a sliding window of SIZE "
                        "averaging overlaps (mmseg's slide mode). Default 0: whole images")
    parser.add_argument("--overlap", type=float, default=0.2,
                        help="with --slice: overlap of neighbouring tiles, a fraction of SIZE "
                        "(default %(default)s)")
    parser.add_argument("--skip-existing", action="store_true",
                        help="resume: inputs whose results are already in --out are skipped")
    parser.add_argument("--fps", type=float, default=10.0,
                        help="frame rate of the annotated videos (default %(default)s)")


def _check(args: argparse.Namespace) -> None:
    if args.batch_size < 1 or args.workers < 0:
        raise ValueError("--batch-size must be >= 1 and --workers >= 0")
    if args.slice and (args.slice < 16 or not 0 <= args.overlap < 1):
        raise ValueError(f"--slice {args.slice} --overlap {args.overlap}: use a tile size of at "
                         "least 16 pixels and an overlap in [0, 1)")
    for what in ("config", "checkpoint"):
        if not Path(getattr(args, what)).exists():
            raise FileNotFoundError(f"{what} {getattr(args, what)} does not exist")


def _model_repository(args: argparse.Namespace):
    """``CONFIG`` naming a model repository (hf://owner/repo or a pe-dense push folder): its
    config.py and model.safetensors become CONFIG and CHECKPOINT, and the word parsed as
    CHECKPOINT was the first input. Returns the repository's files (None for a config)."""
    from pe_dense.engine.hub import is_pretrained, resolve_pretrained

    repo = None
    if is_pretrained(args.config):
        repo = resolve_pretrained(args.config)
        args.inputs = [args.checkpoint, *args.inputs]
        args.config, args.checkpoint = str(repo.config), str(repo.weights)
    if not args.inputs:
        raise ValueError("no INPUT given: pe-dense predict CONFIG CHECKPOINT INPUT... or "
                         "pe-dense predict hf://owner/repo INPUT...")
    return repo


def _limits(args: argparse.Namespace):
    from pe_dense.data.images import DEFAULT_LIMITS, ImageLimits

    if args.max_pixels is None and args.max_aspect is None:
        return None
    return ImageLimits(args.max_pixels or DEFAULT_LIMITS.max_pixels,
                       args.max_aspect or DEFAULT_LIMITS.max_aspect)


def _init_distributed(device: str | None) -> str | None:
    """Under torchrun: join the process group (gloo on CPU, nccl on CUDA) and pick this
    process's device. Returns the device to use."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return device
    import torch
    import torch.distributed as dist

    cuda = torch.cuda.is_available() and (device in (None, "auto") or device.startswith("cuda"))
    if not dist.is_initialized():
        dist.init_process_group("nccl" if cuda else "gloo")
    if cuda:
        return f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}"
    return "cpu" if device in (None, "auto") else device


def _ann_file(args: argparse.Namespace, cfg) -> tuple[str | None, bool]:
    """(--ann-file, True), else the config's test dataset's ``ann_file`` (False), else None."""
    if args.ann_file:
        if not Path(args.ann_file).is_file():
            raise FileNotFoundError(f"--ann-file {args.ann_file} does not exist")
        return args.ann_file, True
    try:
        dataset = cfg.test_dataloader.dataset
        ann = dataset.get("ann_file")
        root = dataset.get("data_root") or ""
    except (AttributeError, KeyError):
        return None, False
    if not ann:
        return None, False
    path = Path(root) / ann if root and not Path(ann).is_absolute() else Path(ann)
    return (str(path), False) if path.is_file() else (None, False)


def _options(args: argparse.Namespace, predictor) -> PredictOptions:
    """The run's :class:`PredictOptions` from the command line (and the model's task)."""
    from pe_dense.engine.predict_run import PredictOptions

    desc = predictor.description
    if args.format == "coco" and desc.name != "detection":
        raise ValueError(f"--format coco is for detection models; {args.config} is a "
                         f"{desc.name} model ({desc.result_files})")
    ann, explicit = _ann_file(args, predictor.cfg) if desc.name == "detection" else (None, False)
    options: dict = {"explicit_ann": explicit}
    if args.save_logits:
        options["save_logits"] = True
    if args.save_raw:
        options["save_raw"] = True
    return PredictOptions(batch_size=args.batch_size, workers=args.workers, draw=args.draw,
                          score_threshold=args.score_threshold, skip_existing=args.skip_existing,
                          slice_size=args.slice, overlap=args.overlap, limits=_limits(args),
                          writer_options=options, ann_file=ann, video_fps=args.fps)


def _report(args: argparse.Namespace, predictor, summary, total: int) -> int:
    """Print the closing summary (process 0); the exit code."""
    import json

    merged = json.loads((Path(args.out) / "summary.json").read_text())
    failed, desc = merged["failed"], predictor.description
    print(f"{merged['predicted']} of {total} inputs predicted, {failed} failed "
          f"({summary.predicted} now at {summary.images_per_second:.2f} images/s"
          f"{', ' + str(summary.skipped) + ' done before' if summary.skipped else ''}"
          f"{', ' + str(merged['processes']) + ' processes' if merged['processes'] > 1 else ''}"
          f"); {desc.name}: {desc.result_files}")
    for source, reason in summary.failed[:10]:
        print(f"  failed: {reason if source in reason else f'{source}: {reason}'}")
    if failed:
        print(f"  the list: {Path(args.out) / 'failed.txt'}")
    if predictor.random_weights:
        print("note: random weights (no checkpoint): results carry no meaning")
    if failed and not merged["predicted"]:
        return EXIT_ALL_FAILED
    return EXIT_SOME_FAILED if failed else 0


def run(args: argparse.Namespace) -> int:
    import torch
    from tqdm import tqdm

    from pe_dense.cli.common import now, print_written
    from pe_dense.data.inputs import expand_inputs
    from pe_dense.engine.predict_run import run_predict
    from pe_dense.engine.predictor import Predictor
    from pe_dense.tasks.description import bind_task

    started = now()
    repo = _model_repository(args)
    _check(args)
    frames = expand_inputs(args.inputs, every=args.every)
    session = open_runtime(args)
    device = "cpu" if session is not None else _init_distributed(args.device)
    predictor = Predictor(args.config, args.checkpoint, device=device,
                          cfg_options=args.cfg_options)
    if session is not None:
        bind_task(predictor.model, session)
    if repo is not None and repo.random_weights:
        predictor.random_weights = True  # a repository of untrained weights: drawings say so
    opts = _options(args, predictor)
    main = not (torch.distributed.is_initialized() and torch.distributed.get_rank() > 0)
    with tqdm(total=len(frames), desc="predict", unit="img", disable=not main) as bar:
        summary = run_predict(predictor, frames, args.out, opts, progress=bar.update)
    if not main:
        return EXIT_SOME_FAILED if summary.failed else 0
    code = _report(args, predictor, summary, len(frames))
    print_written(args.out, started)
    return code
