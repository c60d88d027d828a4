"""Teacher targets on disk: ``pe-dense distill-cache CONFIG`` writes, training reads.

Layout of a cache folder::

    manifest.json        format, dtype, image_size, grid, teachers (config + description),
                         files (absolute image paths, in order), shard_size, done shards
    shard_00000.pt       {"files": [...], "<teacher>": (n, C, gh, gw) float16, ...}

Targets are computed on the whole image resized to ``image_size`` (the dataset's base image)
and stored on ``grid``; training resamples them through each step's crop box and flip
(:func:`pe_dense.distill.views.resample_box`), the same operation applied to the image.
Writing is resumable: each shard and then the manifest are written atomically, and a rerun
skips the shards the manifest lists as done. A rerun with different settings is refused.
"""

from __future__ import annotations

import json
import logging
import os
from collections import OrderedDict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from pe_dense.backbone.inputs import normalize
from pe_dense.backbone.weights import read_checkpoint, save_checkpoint
from pe_dense.distill.images import load_image
from pe_dense.utils.io import atomic_write_text

__all__ = ["CACHE_FORMAT", "write_cache", "TargetCache", "read_manifest", "check_teachers"]

log = logging.getLogger(__name__)

CACHE_FORMAT = "pe_dense.distill_cache/1"
MANIFEST = "manifest.json"


def _write_json(obj: Any, path: Path) -> None:
    atomic_write_text(path, json.dumps(obj, indent=1, sort_keys=True))


def read_manifest(cache_dir: str | os.PathLike) -> dict[str, Any]:
    path = Path(cache_dir) / MANIFEST
    if not path.is_file():
        raise FileNotFoundError(f"no target cache at {cache_dir} ({MANIFEST} missing): run "
                                "pe-dense distill-cache CONFIG first")
    manifest = json.loads(path.read_text())
    if manifest.get("format") != CACHE_FORMAT:
        raise ValueError(f"{path} has format {manifest.get('format')!r}, expected {CACHE_FORMAT}")
    return manifest


def _shard_name(i: int) -> str:
    return f"shard_{i:05d}.pt"


def write_cache(cache_dir: str | os.PathLike, files: Sequence[str],
                teachers: dict[str, nn.Module], teacher_cfgs: dict[str, dict[str, Any]],
                image_size: int, grid: tuple[int, int], shard_size: int = 64,
                batch_size: int = 4, device: str | torch.device = "cpu",
                load: Callable[[str, int], torch.Tensor] | None = None,
                progress: Callable[[int, int], None] | None = None) -> dict[str, Any]:
    """Compute every teacher's targets for ``files`` and write them as float16 shards.

    ``teachers``: name -> teacher module (``forward(images, grid) -> (B, C, gh, gw)``, images
    in PE's [-1, 1]; a teacher with ``needs_files = True`` also gets ``files=`` the batch's
    paths, e.g. ground-truth masks); ``teacher_cfgs``: name -> the config dict it was built from
    (recorded and compared on resume). ``load(path, image_size) -> (3, S, S) uint8`` reads an
    image (default :func:`pe_dense.distill.images.load_image`); batches are normalised with
    :func:`pe_dense.backbone.inputs.normalize`. Returns the final manifest.
    """
    load = load or load_image
    out = Path(cache_dir)
    out.mkdir(parents=True, exist_ok=True)
    settings = {
        "format": CACHE_FORMAT, "dtype": "float16", "image_size": int(image_size),
        "grid": [int(grid[0]), int(grid[1])], "shard_size": int(shard_size),
        "files": list(files),
        "teachers": {name: {"config": teacher_identity(teacher_cfgs[name]),
                            "description": _jsonable(teachers[name].describe())}
                     for name in sorted(teachers)},
    }
    manifest = _start_manifest(out, settings)
    n_shards = -(-len(files) // shard_size)
    for s in range(n_shards):
        name = _shard_name(s)
        if name in manifest["done"] and (out / name).is_file():
            if progress is not None:
                progress(s + 1, n_shards)
            continue
        chunk = list(files[s * shard_size:(s + 1) * shard_size])
        shard = _compute_shard(chunk, teachers, lambda f: load(f, image_size), tuple(grid),
                               batch_size, device)
        save_checkpoint(shard, out / name)
        manifest["done"] = sorted(set(manifest["done"]) | {name})
        _write_json(manifest, out / MANIFEST)
        if progress is not None:
            progress(s + 1, n_shards)
    _write_json(manifest, out / MANIFEST)
    return manifest


def _start_manifest(out: Path, settings: dict[str, Any]) -> dict[str, Any]:
    """A new manifest, or the existing one's done shards when its settings are the same."""
    manifest = {**settings, "done": []}
    if (out / MANIFEST).is_file():
        old = read_manifest(out)
        diff = [k for k in settings if old.get(k) != settings[k]]
        if diff:
            raise ValueError(f"the cache at {out} was written with different {diff}; use a new "
                             "cache folder or delete this one")
        manifest["done"] = sorted(set(old.get("done", [])))
        log.info("resuming cache %s: %d shards already done", out, len(manifest["done"]))
    return manifest


def _compute_shard(chunk: list[str], teachers: dict[str, nn.Module],
                   load: Callable[[str], torch.Tensor], grid: tuple[int, int], batch_size: int,
                   device: str | torch.device) -> dict[str, Any]:
    """``{"files": chunk, <teacher>: (n, C, gh, gw) float16}`` for the images ``chunk``."""
    shard: dict[str, Any] = {"files": chunk}
    for tname, teacher in teachers.items():
        parts = []
        for b in range(0, len(chunk), batch_size):
            files = chunk[b:b + batch_size]
            images = normalize(torch.stack([load(f) for f in files]))
            extra = {"files": files} if getattr(teacher, "needs_files", False) else {}
            parts.append(teacher(images.to(device), grid, **extra).to("cpu", torch.float16))
        shard[tname] = torch.cat(parts)
    return shard


def _jsonable(obj: Any) -> Any:
    return json.loads(json.dumps(obj, default=str))


TRAINER_KEYS = ("losses", "temperature", "project")


def teacher_identity(cfg: dict[str, Any]) -> dict[str, Any]:
    """The part of a teacher config that determines its targets (loss settings removed)."""
    return _jsonable({k: v for k, v in dict(cfg).items() if k not in TRAINER_KEYS})


def check_teachers(cache_dir: str | os.PathLike,
                   teachers: Sequence[dict[str, Any]]) -> list[str]:
    """Names of ``teachers`` (configs with ``name``) found in the cache; raises if a cached
    teacher was written with a different config."""
    cached = read_manifest(cache_dir)["teachers"]
    names = []
    for cfg in teachers:
        name = cfg["name"]
        if name not in cached:
            continue
        if cached[name]["config"] != teacher_identity(cfg):
            raise ValueError(f"teacher {name!r} in cache {cache_dir} was written with config "
                             f"{cached[name]['config']}, the run uses {teacher_identity(cfg)}: "
                             "write a new cache (pe-dense distill-cache CONFIG) into another "
                             "folder or delete this one")
        names.append(name)
    return names


class TargetCache:
    """Read access to a complete cache: ``get(path) -> {teacher: (C, gh, gw) float16}``.

    ``teachers`` restricts (and checks) the teacher names read. Recently used shards stay in
    memory (``max_shards`` of them).
    """

    def __init__(self, cache_dir: str | os.PathLike, teachers: Sequence[str] | None = None,
                 max_shards: int = 8) -> None:
        self.dir = Path(cache_dir)
        self.manifest = read_manifest(self.dir)
        available = sorted(self.manifest["teachers"])
        self.teachers = list(teachers) if teachers is not None else available
        unknown = sorted(set(self.teachers) - set(available))
        if unknown:
            raise ValueError(f"cache {self.dir} has teachers {available}, not {unknown}")
        size = self.manifest["shard_size"]
        n_shards = -(-len(self.manifest["files"]) // size)
        missing = [_shard_name(s) for s in range(n_shards)
                   if _shard_name(s) not in self.manifest["done"]]
        if missing:
            raise ValueError(f"cache {self.dir} is incomplete ({len(missing)} of {n_shards} "
                             "shards missing): rerun pe-dense distill-cache CONFIG to finish it")
        self.index = {f: (i // size, i % size) for i, f in enumerate(self.manifest["files"])}
        self.max_shards = max_shards
        self._shards: OrderedDict[int, dict[str, Any]] = OrderedDict()

    @property
    def grid(self) -> tuple[int, int]:
        return tuple(self.manifest["grid"])

    def check_covers(self, files: Sequence[str], image_size: int) -> None:
        """Raise if any file is absent or the cache was made at another image size."""
        if self.manifest["image_size"] != image_size:
            raise ValueError(f"cache {self.dir} was made at image_size "
                             f"{self.manifest['image_size']}, the data uses {image_size}")
        absent = [f for f in files if f not in self.index]
        if absent:
            raise ValueError(f"{len(absent)} images are not in cache {self.dir} (first: "
                             f"{absent[0]}): rerun pe-dense distill-cache with the same data")

    def _shard(self, s: int) -> dict[str, Any]:
        if s in self._shards:
            self._shards.move_to_end(s)
            return self._shards[s]
        shard = read_checkpoint(self.dir / _shard_name(s))
        self._shards[s] = shard
        while len(self._shards) > self.max_shards:
            self._shards.popitem(last=False)
        return shard

    def get(self, path: str) -> dict[str, torch.Tensor]:
        if path not in self.index:
            raise KeyError(f"{path} is not in cache {self.dir}")
        s, i = self.index[path]
        shard = self._shard(s)
        return {name: shard[name][i] for name in self.teachers}
