"""Precompute teacher targets for a distillation config (sharded float16, resumable).

Reads the config's data (train and val images), its teachers and its `cache` dict (dir, grid,
shard_size, batch_size, optional teachers=[names]); writes the shards and a manifest recording
teacher, layer and resolution. Rerun the same command to resume an interrupted cache.
"""

from __future__ import annotations

import argparse
import logging

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", help="configs/distill/*.py")
    parser.add_argument("--out", help="cache folder (default: the config's cache.dir)")
    parser.add_argument("--teachers", nargs="+", help="only these teacher names")
    parser.add_argument("--device", help="default: cuda when available, else cpu")
    parser.add_argument("--cfg-options", nargs="+", metavar="KEY=VALUE",
                        help="override config entries")


def run(args: argparse.Namespace) -> int:
    import torch
    from tqdm import tqdm

    from pe_dense.backbone.variants import get_variant
    from pe_dense.distill.cache import write_cache
    from pe_dense.distill.data import list_images, split_files
    from pe_dense.distill.teachers import build_teacher
    from pe_dense.engine import load_config

    cfg = load_config(args.config, args.cfg_options)
    cache = dict(cfg.get("cache") or {})
    out = args.out or cache.get("dir")
    if not out:
        raise ValueError("no cache folder: pass --out or set cache = dict(dir=...) in the config")
    datasets = [cfg[k].dataset for k in ("train_dataloader", "val_dataloader") if cfg.get(k)]
    sizes = {d.get("image_size", 448) for d in datasets}
    if len(sizes) != 1:
        raise ValueError(f"train and val datasets use different image_size {sorted(sizes)}")
    image_size = sizes.pop()
    files: list[str] = []
    for d in datasets:
        for f in split_files(list_images(d.roots), d.get("split", "all"),
                             d.get("holdout_every", 0)):
            if f not in files:
                files.append(f)
    wanted = args.teachers or cache.get("teachers") or [t["name"] for t in cfg.model.teachers]
    cfgs = {t["name"]: dict(t) for t in cfg.model.teachers if t["name"] in wanted}
    unknown = sorted(set(wanted) - set(cfgs))
    if unknown:
        raise ValueError(f"teachers {unknown} are not in the config's model.teachers")
    patch = get_variant(cfg.model.student["model"]).patch_size
    grid = cache.get("grid") or image_size // patch
    grid = (grid, grid) if isinstance(grid, int) else tuple(grid)
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    teachers = {name: build_teacher(c, device=device) for name, c in cfgs.items()}
    log.info("caching %s for %d images at %d px, grid %s, into %s", sorted(teachers), len(files),
             image_size, grid, out)
    bar = tqdm(total=-(-len(files) // cache.get("shard_size", 64)), unit="shard")

    def progress(done: int, total: int) -> None:
        bar.n = done
        bar.refresh()

    manifest = write_cache(out, files, teachers, cfgs, image_size=image_size, grid=grid,
                           shard_size=cache.get("shard_size", 64),
                           batch_size=cache.get("batch_size", 4), device=device,
                           progress=progress)
    bar.close()
    print(f"cache {out}: {len(manifest['files'])} images, teachers {sorted(teachers)}, "
          f"{len(manifest['done'])} shards")
    return 0
