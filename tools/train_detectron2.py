#!/usr/bin/env python
"""Train or evaluate a detectron2 LazyConfig detector whose backbone is pe_dense's PEViT.

    CFG=configs/detectron2/mask_rcnn_pe_spatial_b_coco.py
    python tools/train_detectron2.py --config-file $CFG --num-gpus 8 \
        train.init_checkpoint=/path/to/PE-Spatial-B16-512.pt
    python tools/train_detectron2.py --config-file $CFG --eval-only \
        train.init_checkpoint=output/model_final.pth
    python tools/train_detectron2.py --config-file configs/detectron2/mask_rcnn_pe_test_tiny.py \
        --register-coco coco_tiny=../shared/data/coco_tiny train.output_dir=/tmp/pe_d2_tiny

Arguments are detectron2's (``--num-gpus``, ``--num-machines``, ``--machine-rank``,
``--dist-url``, ``--resume``, ``--eval-only``, ``key=value`` config overrides) plus
``--register-coco NAME=ROOT``, which registers each COCO-layout split of ROOT
(``annotations/instances_<split>2017.json`` + ``images/<split>2017``) as ``NAME_<split>``.
``train.init_checkpoint`` takes any format pe_dense reads (official PE ``.pt``, timm / HF,
``pe-dense convert --to detectron2`` output, official PE or our own detector checkpoints);
``--resume`` continues from the last checkpoint in ``train.output_dir`` instead.
"""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Any

log = logging.getLogger("pe_dense.train_detectron2")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    from detectron2.engine import default_argument_parser

    parser = default_argument_parser(epilog=__doc__)
    parser.add_argument("--register-coco", action="append", default=[], metavar="NAME=ROOT",
                        help="register the COCO-layout folder ROOT as datasets NAME_<split>")
    return parser.parse_args(argv)


def register_datasets(specs: list[str]) -> None:
    from pe_dense.integrations.detectron2 import register_coco_root

    for spec in specs:
        name, sep, root = spec.partition("=")
        if not sep or not name or not root:
            raise ValueError(f"--register-coco {spec!r}: expected NAME=ROOT, e.g. "
                             "coco_tiny=../shared/data/coco_tiny")
        log.info("registered datasets %s", register_coco_root(name, root))


def evaluate(cfg: Any, model: Any) -> dict:
    """COCO metrics of ``model`` on ``cfg.dataloader.test`` (empty if no evaluator is set)."""
    from detectron2.config import instantiate
    from detectron2.evaluation import inference_on_dataset, print_csv_format

    if "evaluator" not in cfg.dataloader:
        log.warning("the config has no dataloader.evaluator: nothing to evaluate")
        return {}
    results = inference_on_dataset(model, instantiate(cfg.dataloader.test),
                                   instantiate(cfg.dataloader.evaluator))
    print_csv_format(results)
    return results


def build_model(cfg: Any) -> Any:
    from detectron2.config import instantiate

    model = instantiate(cfg.model)
    model.to(cfg.train.device)
    return model


def train(cfg: Any, args: argparse.Namespace) -> None:
    from detectron2.config import instantiate
    from detectron2.engine import AMPTrainer, SimpleTrainer, default_writers, hooks
    from detectron2.engine.defaults import create_ddp_model
    from detectron2.utils import comm

    from pe_dense.backbone.weights import load_detector_checkpoint
    from pe_dense.integrations.detectron2 import PEDetectionCheckpointer

    model = build_model(cfg)
    cfg.optimizer.params.model = model
    optimizer = instantiate(cfg.optimizer)
    loader = instantiate(cfg.dataloader.train)
    ddp_model = create_ddp_model(model, **cfg.train.ddp)
    trainer_cls = AMPTrainer if cfg.train.amp.enabled else SimpleTrainer
    trainer = trainer_cls(ddp_model, loader, optimizer)
    checkpointer = PEDetectionCheckpointer(ddp_model, cfg.train.output_dir, trainer=trainer)
    main = comm.is_main_process()
    trainer.register_hooks([
        hooks.IterationTimer(),
        hooks.LRScheduler(scheduler=instantiate(cfg.lr_multiplier)),
        hooks.PeriodicCheckpointer(checkpointer, **cfg.train.checkpointer) if main else None,
        hooks.EvalHook(cfg.train.eval_period, lambda: evaluate(cfg, ddp_model)),
        hooks.PeriodicWriter(default_writers(cfg.train.output_dir, cfg.train.max_iter),
                             period=cfg.train.log_period) if main else None,
    ])
    start_iter = 0
    if args.resume and checkpointer.has_checkpoint():
        checkpointer.resume_or_load("", resume=True)
        start_iter = trainer.iter + 1
        log.info("resuming from %s at iteration %d", checkpointer.get_checkpoint_file(),
                 start_iter)
    elif cfg.train.init_checkpoint:
        report = load_detector_checkpoint(model, cfg.train.init_checkpoint)
        log.info("initialised from %s:\n%s", cfg.train.init_checkpoint, report["backbone"])
    else:
        log.warning("train.init_checkpoint is empty: the backbone starts from random weights")
    trainer.train(start_iter, cfg.train.max_iter)


def worker(args: argparse.Namespace) -> dict | None:
    from detectron2.config import LazyConfig
    from detectron2.engine import default_setup
    from detectron2.engine.defaults import create_ddp_model
    from detectron2.utils import comm
    from detectron2.utils.logger import setup_logger

    from pe_dense.backbone.weights import load_detector_checkpoint

    cfg = LazyConfig.apply_overrides(LazyConfig.load(args.config_file), args.opts)
    default_setup(cfg, args)
    # detectron2 sets up its own loggers; show pe_dense's (weight loading, datasets) the same way.
    setup_logger(cfg.train.output_dir, distributed_rank=comm.get_rank(), name="pe_dense")
    register_datasets(args.register_coco)  # the catalog is per process: register in each worker
    if not args.eval_only:
        train(cfg, args)
        return None
    model = build_model(cfg)
    if not cfg.train.init_checkpoint:
        raise ValueError("--eval-only needs weights: add train.init_checkpoint=PATH")
    load_detector_checkpoint(model, cfg.train.init_checkpoint)
    return evaluate(cfg, create_ddp_model(model))


def main(argv: list[str] | None = None) -> int:
    from pe_dense.integrations.detectron2 import require_detectron2

    try:
        require_detectron2()
    except ImportError as exc:
        print(f"train_detectron2: {exc}", file=sys.stderr)
        return 2
    from detectron2.engine import launch

    args = parse_args(argv)
    launch(worker, args.num_gpus, num_machines=args.num_machines,
           machine_rank=args.machine_rank, dist_url=args.dist_url, args=(args,))
    return 0


if __name__ == "__main__":
    sys.exit(main())
