"""Precompute teacher targets for a distillation config (sharded float16, resumable).

Reads the config's data (train and val images), its teachers and its `cache` dict (dir, grid,
shard_size, batch_size, optional teachers=[names]); writes the shards and a manifest recording
teacher, layer and resolution. Rerun the same command to resume an interrupted cache.
"""

from __future__ import annotations

import argparse
import logging

from pe_dense.cli.options import add_cfg_options, add_device_option, add_output_option

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", help="configs/distill/*.py")
    add_output_option(parser, when_missing="the config's cache.dir")
    parser.add_argument("--teachers", nargs="+", help="only these teacher names")
    add_device_option(parser)
    add_cfg_options(parser)


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from pe_dense.distill.cache import write_cache
    from pe_dense.distill.report import plan_cache
    from pe_dense.distill.teachers import build_teacher
    from pe_dense.engine import load_config
    from pe_dense.engine.tasks.distill import TEACHER_BUILDERS
    from pe_dense.utils.device import pick_device

    cfg = load_config(args.config, args.cfg_options)
    plan = plan_cache(cfg, args.out, args.teachers)
    device = str(pick_device(args.device))
    teachers = {name: build_teacher(c, device=device, builders=TEACHER_BUILDERS)
                for name, c in plan.teachers.items()}
    log.info("caching %s for %d images at %d px, grid %s, into %s", sorted(teachers),
             len(plan.files), plan.image_size, plan.grid, plan.out)
    with tqdm(total=-(-len(plan.files) // plan.shard_size), unit="shard") as bar:
        def progress(done: int, total: int) -> None:
            bar.n = done
            bar.refresh()

        manifest = write_cache(plan.out, plan.files, teachers, plan.teachers,
                               image_size=plan.image_size, grid=plan.grid,
                               shard_size=plan.shard_size, batch_size=plan.batch_size,
                               device=device, progress=progress)
    print(f"cache {plan.out}: {len(manifest['files'])} images, teachers {sorted(teachers)}, "
          f"{len(manifest['done'])} shards")
    return 0
