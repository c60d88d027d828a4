"""Run a trained model on images: drawn results and a JSON of predictions in --out.

Example::

    pe-dense predict configs/det/mask_rcnn_pe_spatial_b_coco.py work_dirs/b/iter_184375.pth \
        images/*.jpg --out predictions/
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from pe_dense.utils.io import atomic_path, atomic_write_text

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
    from PIL import Image
    from tqdm import tqdm

    from pe_dense.engine.predictor import Predictor, detections_to_json

    predictor = Predictor(args.config, args.checkpoint, device=args.device,
                          cfg_options=args.cfg_options)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    records = []
    for path in tqdm(args.images, desc="predict", unit="img"):
        pred = predictor(path)
        drawn = predictor.draw(path, pred, score_threshold=args.score_threshold)
        target = out / f"{Path(path).stem}.png"
        with atomic_path(target) as tmp:
            Image.fromarray(drawn).save(tmp)
        record = {"image": str(path), "drawn": str(target)}
        if predictor.task == "detection":
            record["instances"] = detections_to_json(pred, predictor.class_names,
                                                     args.score_threshold)
        records.append(record)
    result = out / "predictions.json"
    atomic_write_text(result, json.dumps(records, indent=1))
    print(f"{len(records)} images -> {out} (drawn images, predictions.json)")
    return 0
