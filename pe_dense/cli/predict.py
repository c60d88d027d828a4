"""Run a trained model on images: drawn results and a JSON of predictions in --out.

Example::

    pe-dense predict configs/det/mask_rcnn_pe_spatial_b_coco.py work_dirs/b/iter_184375.pth \
        images/*.jpg --out predictions/
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", help="mmengine Python config the model was trained with")
    parser.add_argument("checkpoint", help="checkpoint saved by pe-dense train")
    parser.add_argument("images", nargs="+", help="image files")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--score-threshold", type=float, default=0.5,
                        help="detections below this score are not drawn or saved")
    parser.add_argument("--device", default=None, help="cpu, cuda, cuda:1 (default: auto)")
    parser.add_argument("--cfg-options", nargs="+", default=None, metavar="KEY=VALUE")


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from pe_dense.cli.common import now, print_written
    from pe_dense.engine.predictor import Predictor, predict_file, write_records

    started = now()
    predictor = Predictor(args.config, args.checkpoint, device=args.device,
                          cfg_options=args.cfg_options)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    records = [predict_file(predictor, path, out, args.score_threshold)
               for path in tqdm(args.images, desc="predict", unit="img")]
    write_records(out, records)
    print(f"{len(records)} images predicted")
    print_written(out, started)
    return 0
