"""The work behind the distillation commands: ``pe-dense distill-eval`` (metrics.json with the
initial-student and image-independent baselines, image | student | teacher PCA pictures) and
the plan of ``pe-dense distill-cache`` (which images, teachers, size and grid to cache)."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pe_dense.utils.io import atomic_path, atomic_write_text

__all__ = ["evaluate_checkpoint", "write_pca_pictures", "CachePlan", "plan_cache"]


def _eval_dataset(cfg: Any, images: list[str] | None) -> Any:
    """The config's val split (train split if there is none), or the given image folders."""
    from pe_dense.distill.data import DistillImageDataset

    val = dict(cfg.val_dataloader.dataset if cfg.get("val_dataloader")
               else cfg.train_dataloader.dataset)
    val.pop("type", None)
    if images:
        val.update(roots=images, split="all", holdout_every=0, cache_dir=None)
    return DistillImageDataset(**val)


def evaluate_checkpoint(cfg: Any, checkpoint: str | os.PathLike, out: str | os.PathLike,
                        images: list[str] | None = None, batch_size: int = 8,
                        device: str | torch.device = "cpu", baseline: bool = False,
                        pictures: int = 4, teacher_builders: Any = None) -> dict[str, Any]:
    """Score the student in ``checkpoint`` against its teachers; write ``out/metrics.json``
    and ``pictures`` PCA pictures. Returns the metrics dict (``metrics``, ``baseline`` with
    ``baseline=True``, ``constant_baseline``, ``per_image``, ``images``).
    ``teacher_builders``: for teachers run online, see
    :func:`pe_dense.distill.teachers.build_teacher` (the CLI passes SAM 2's)."""
    from pe_dense.distill.evaluate import build_eval_model, constant_baseline, evaluate

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    dataset = _eval_dataset(cfg, images)
    model = build_eval_model(cfg.model, Path(checkpoint), device, teacher_builders)
    means, rows = evaluate(model, dataset, batch_size, device)
    result = {"checkpoint": str(checkpoint), "images": len(dataset), "metrics": means,
              "per_image": rows}
    if baseline:
        start = build_eval_model(cfg.model, None, device, teacher_builders)
        result["baseline"] = evaluate(start, dataset, batch_size, device)[0]
    result["constant_baseline"] = constant_baseline(model, dataset, device)
    atomic_write_text(out / "metrics.json", json.dumps(result, indent=1))
    write_pca_pictures(model, dataset, out, pictures, device)
    return result


def _as_uint8(image: torch.Tensor) -> np.ndarray:
    """(3, H, W) uint8, or float in [-1, 1] -> (H, W, 3) uint8."""
    if image.dtype != torch.uint8:
        image = ((image.float() + 1) * 127.5).round().clamp(0, 255).to(torch.uint8)
    return image.permute(1, 2, 0).cpu().numpy()


def write_pca_pictures(model: Any, dataset: Any, out: str | os.PathLike, count: int,
                       device: str | torch.device) -> list[Path]:
    """image | student PCA | teacher PCAs for the first ``count`` images, as
    ``out/pca_<i>_<folder>_<stem>.png``. Returns the written paths."""
    from PIL import Image

    from pe_dense.distill.evaluate import feature_maps
    from pe_dense.viz.pca import feature_panel

    paths = []
    for i in range(min(count, len(dataset))):
        item = dataset[i]
        cached = {k: v.to(device) for k, v in item.get("targets", {}).items()}
        maps = feature_maps(model, item["image"].to(device), cached)
        panel = feature_panel(_as_uint8(item["image"]), [(k, v.cpu()) for k, v in maps.items()])
        source = Path(dataset.files[i])
        path = Path(out) / f"pca_{i:02d}_{source.parent.name}_{source.stem}.png"
        with atomic_path(path) as tmp:
            Image.fromarray(np.ascontiguousarray(panel)).save(tmp)
        paths.append(path)
    return paths


@dataclass
class CachePlan:
    """What a teacher cache holds: ``files`` (train and val images, each once), the teacher
    configs by name, the image size and feature ``grid`` (h, w), and shard/batch sizes."""

    out: str
    files: list[str]
    teachers: dict[str, dict]
    image_size: int
    grid: tuple[int, int]
    shard_size: int = 64
    batch_size: int = 4


def _cache_files(datasets: list[Any]) -> list[str]:
    from pe_dense.distill.images import list_images, split_files

    files: list[str] = []
    for d in datasets:
        for f in split_files(list_images(d.roots), d.get("split", "all"),
                             d.get("holdout_every", 0)):
            if f not in files:
                files.append(f)
    return files


def plan_cache(cfg: Any, out: str | None = None, teachers: list[str] | None = None
               ) -> CachePlan:
    """The cache of a distillation config: its ``cache`` dict (dir, grid, shard_size,
    batch_size, teachers), overridden by ``out`` and ``teachers``; ``ValueError`` on a missing
    folder, differing train/val image sizes or unknown teacher names."""
    from pe_dense.backbone.factory import describe_backbone

    cache = dict(cfg.get("cache") or {})
    out = out or cache.get("dir")
    if not out:
        raise ValueError("no cache folder: pass --out or set cache = dict(dir=...) in the config")
    datasets = [cfg[k].dataset for k in ("train_dataloader", "val_dataloader") if cfg.get(k)]
    sizes = {d.get("image_size", 448) for d in datasets}
    if len(sizes) != 1:
        raise ValueError(f"train and val datasets use different image_size {sorted(sizes)}")
    image_size = sizes.pop()
    wanted = teachers or cache.get("teachers") or [t["name"] for t in cfg.model.teachers]
    cfgs = {t["name"]: dict(t) for t in cfg.model.teachers if t["name"] in wanted}
    unknown = sorted(set(wanted) - set(cfgs))
    if unknown:
        raise ValueError(f"teachers {unknown} are not in the config's model.teachers")
    student = dict(cfg.model.student)
    patch = describe_backbone(student["model"])["patch_size"]
    grid = cache.get("grid") or image_size // patch
    grid = (grid, grid) if isinstance(grid, int) else tuple(grid)
    return CachePlan(out, _cache_files(datasets), cfgs, image_size, grid,
                     cache.get("shard_size", 64), cache.get("batch_size", 4))
