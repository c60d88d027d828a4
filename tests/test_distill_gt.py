"""Ground-truth mask teacher (kind "gt_masks"): +/- logit maps of the segment under each point
prompt on hand-made instance masks, the point-prompt base shared with SAM 2, the target cache
(files passed to the teacher), the errors, and distill-cache + distill end to end (PE-Test)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from pe_dense.distill.cache import TargetCache, check_teachers, read_manifest, write_cache
from pe_dense.distill.gt_teacher import GroundTruthMaskTeacher
from pe_dense.distill.prompt_teacher import PointPromptTeacher, fit_aspect
from pe_dense.distill.teachers import TEACHER_KINDS, build_teacher

# 8 x 8 instance ids: 1 top-left block, 2 bottom-right block, 3 a small top-right block, 0 the rest
IDS = np.zeros((8, 8), dtype=np.uint8)
IDS[0:4, 0:4] = 1
IDS[4:8, 4:8] = 2
IDS[0:2, 6:8] = 3


def _segment(k: int, logit: float = 8.0) -> torch.Tensor:
    """(8, 8) expected logits of segment ``k`` of IDS."""
    return torch.where(torch.from_numpy(IDS == k), logit, -logit).float()


@pytest.fixture
def world(tmp_path: Path) -> Path:
    """images/{a,b}.png (8 x 8 RGB) and instances/{a,b}.png (b: IDS transposed)."""
    rng = np.random.default_rng(0)
    for sub in ("images", "instances"):
        (tmp_path / sub).mkdir()
    for name, ids in (("a", IDS), ("b", IDS.T.copy())):
        Image.fromarray(rng.integers(0, 255, (8, 8, 3), dtype=np.uint8)).save(
            tmp_path / "images" / f"{name}.png")
        Image.fromarray(ids).save(tmp_path / "instances" / f"{name}.png")
    return tmp_path


def _gt(root: Path, **kw) -> GroundTruthMaskTeacher:
    return build_teacher(dict(name="mask", kind="gt_masks", masks=str(root / "instances"),
                              losses=dict(cosine=1.0), **kw))


def test_logits_are_the_segment_under_each_point(world: Path):
    teacher = _gt(world, points_per_side=2, logit=8.0)
    assert isinstance(teacher, PointPromptTeacher) and "gt_masks" in TEACHER_KINDS
    assert teacher.out_channels == 4 and teacher.needs_files
    # points (x, y) = (2, 2), (6, 2), (2, 6), (6, 6): segments 1, background, background, 2
    assert teacher.point_grid(torch.device("cpu"), (8, 8)).tolist() == [
        [2, 2], [6, 2], [2, 6], [6, 6]]
    images = torch.zeros(1, 3, 8, 8)
    out = teacher(images, (8, 8), files=[str(world / "images" / "a.png")])
    assert out.shape == (1, 4, 8, 8) and out.dtype == torch.float32
    for channel, k in enumerate((1, 0, 0, 2)):
        assert torch.equal(out[0, channel], _segment(k)), channel
    # a finer grid reaches the small segment 3: point (x=7, y=1) is row 0, column 3
    fine = _gt(world, points_per_side=4, logit=2.0)
    out = fine(images, (8, 8), files=[str(world / "images" / "a.png")])
    assert torch.equal(out[0, 3], _segment(3, 2.0)) and torch.equal(out[0, 0], _segment(1, 2.0))
    assert torch.equal(out[0, 15], _segment(2, 2.0)) and torch.equal(out[0, 12], _segment(0, 2.0))
    # each image of a batch gets its own file's mask (b.png: IDS transposed)
    out = teacher(torch.zeros(2, 3, 8, 8), (4, 4),
                  files=[str(world / "images" / f) for f in ("a.png", "b.png")])
    # resampled to the grid as SAM's logits are: 2 x 2 average pooling of the +/-8 maps
    expected = F.adaptive_avg_pool2d(_segment(1)[None, None], (4, 4))[0, 0]
    assert torch.equal(out[0, 0], expected) and torch.equal(out[1, 0], expected.T)
    assert out[0, 0, 0, 0] == 8 and out[0, 0, 3, 3] == -8
    desc = teacher.describe()
    assert desc == {"kind": "gt_masks", "masks": str((world / "instances").resolve()),
                    "points_per_side": 2, "logit": 8.0, "out_channels": 4}


def test_mask_of_another_size_is_resized_nearest(world: Path):
    Image.fromarray(IDS[::2, ::2].copy()).save(world / "instances" / "a.png")  # 4 x 4 mask
    teacher = _gt(world, points_per_side=2)
    out = teacher(torch.zeros(1, 3, 8, 8), (8, 8), files=[str(world / "images" / "a.png")])
    small = torch.from_numpy(IDS[::2, ::2] == 1)
    expected = torch.where(small.repeat_interleave(2, 0).repeat_interleave(2, 1), 8.0, -8.0)
    assert torch.equal(out[0, 0], expected)


def test_online_call_and_missing_mask_say_what_to_do(world: Path):
    teacher = _gt(world, points_per_side=2)
    with pytest.raises(ValueError, match="pe-dense distill-cache CONFIG"):
        teacher(torch.zeros(1, 3, 8, 8), (4, 4))
    (world / "instances" / "b.png").unlink()
    with pytest.raises(FileNotFoundError, match=r"b\.png.*instances"):
        teacher(torch.zeros(1, 3, 8, 8), (4, 4), files=[str(world / "images" / "b.png")])
    with pytest.raises(FileNotFoundError, match="does not exist"):
        build_teacher(dict(kind="gt_masks", masks=str(world / "nowhere")))
    with pytest.raises(ValueError, match="needs masks="):
        build_teacher(dict(kind="gt_masks"))
    # in the trainer, without a cache, the first step says the same
    from pe_dense.distill.model import DistillModel

    model = DistillModel(student=dict(model="PE-Test"), crop_size=32,
                         teachers=[dict(name="mask", kind="gt_masks",
                                        masks=str(world / "instances"), points_per_side=2,
                                        losses=dict(cosine=1.0))])
    with pytest.raises(ValueError, match="pe-dense distill-cache CONFIG"):
        model.loss(torch.zeros(1, 3, 32, 32, dtype=torch.uint8))


def test_fit_aspect():
    square = torch.rand(1, 2, 8, 8)
    assert fit_aspect(square, (16, 16)) is square
    assert fit_aspect(square, (16, 32)).shape == (1, 2, 8, 16)
    assert fit_aspect(square, (32, 16)).shape == (1, 2, 16, 8)
    wide = torch.rand(1, 2, 8, 16)  # already at the input's aspect ratio (ground-truth masks)
    assert fit_aspect(wide, (16, 32)) is wide


def test_shared_base_keeps_sam2_numbers():
    """SAM2MaskTeacher's forward through the base: the per-image logits, stretched to the
    input's aspect ratio, then average-pooled to the grid (the code before the base)."""
    pytest.importorskip("sam2")
    from pe_dense.distill.sam2_teacher import SAM2MaskTeacher
    from pe_dense.engine.tasks.distill import TEACHER_BUILDERS

    cfg = dict(kind="sam2", config="configs/sam2.1/sam2.1_hiera_t.yaml", checkpoint=None,
               image_size=128, points_per_side=2, seed=0)
    teacher = build_teacher(cfg, builders=TEACHER_BUILDERS)
    assert isinstance(teacher, SAM2MaskTeacher) and isinstance(teacher, PointPromptTeacher)
    assert not teacher.needs_files and teacher.out_channels == 4
    assert teacher.point_grid(torch.device("cpu")).tolist() == [
        [32, 32], [96, 32], [32, 96], [96, 96]]
    x = torch.rand(2, 3, 32, 48, generator=torch.Generator().manual_seed(0)) * 2 - 1
    out = teacher(x, (2, 3))
    embed, high_res = teacher._encode(x)
    points = teacher.point_grid(x.device)
    for i in range(2):
        logits = teacher._logits(embed[i:i + 1], [f[i:i + 1] for f in high_res], points)
        assert logits.shape == (1, 4, 32, 32)
        wide = F.interpolate(logits, size=(32, 48), mode="bilinear", align_corners=False)
        assert torch.allclose(out[i], F.adaptive_avg_pool2d(wide, (2, 3))[0], atol=1e-6)


def test_cache_writes_gt_targets_with_files(world: Path, tmp_path: Path):
    cfg = dict(name="mask", kind="gt_masks", masks=str(world / "instances"), points_per_side=2,
               logit=4.0, losses=dict(cosine=1.0))
    files = [str((world / "images" / f).resolve()) for f in ("a.png", "b.png")]
    teacher = build_teacher(cfg)
    manifest = write_cache(tmp_path / "cache", files, {"mask": teacher}, {"mask": cfg},
                           image_size=16, grid=(4, 4), shard_size=1, batch_size=2)
    desc = manifest["teachers"]["mask"]["description"]
    assert desc["kind"] == "gt_masks" and desc["logit"] == 4.0 and desc["points_per_side"] == 2
    assert desc["masks"] == str((world / "instances").resolve())
    cache = TargetCache(tmp_path / "cache")
    # the 8 x 8 masks are resized (nearest) to the 16 x 16 base images, then pooled to 4 x 4
    a, b = cache.get(files[0])["mask"].float(), cache.get(files[1])["mask"].float()
    expected = F.adaptive_avg_pool2d(_segment(1, 4.0)[None, None], (4, 4))[0, 0]
    assert a.shape == (4, 4, 4) and torch.equal(a[0], expected) and torch.equal(b[0], expected.T)
    # the cache's teacher identity check: same config passes, another logit is refused
    assert check_teachers(tmp_path / "cache", [{**cfg, "losses": dict(locality=1.0)}]) == ["mask"]
    with pytest.raises(ValueError, match="different config|written with config"):
        check_teachers(tmp_path / "cache", [{**cfg, "logit": 8.0}])
    assert read_manifest(tmp_path / "cache")["done"] == ["shard_00000.pt", "shard_00001.pt"]


def _scene(root: Path, n: int) -> None:
    """n 64 x 64 images with one or two coloured squares and their instance masks."""
    rng = np.random.default_rng(1)
    for sub in ("images", "instances"):
        (root / sub).mkdir(parents=True)
    for i in range(n):
        image = rng.integers(0, 60, (64, 64, 3), dtype=np.uint8)
        ids = np.zeros((64, 64), dtype=np.uint8)
        for k in range(1, 3):
            y, x = rng.integers(0, 40, 2)
            ids[y:y + 24, x:x + 24] = k
            image[y:y + 24, x:x + 24] = rng.integers(100, 255, 3)
        Image.fromarray(image).save(root / "images" / f"{i:05d}.png")
        Image.fromarray(ids).save(root / "instances" / f"{i:05d}.png")


def test_distill_cache_then_distill_end_to_end(tmp_path: Path):
    """A layer teacher and a gt_masks teacher: `pe-dense distill-cache CONFIG`, then
    `pe-dense distill CONFIG` for 2 steps, with the dataset reading the cache."""
    from pe_dense.cli import main

    _scene(tmp_path / "world", 4)
    cache_dir = tmp_path / "cache"
    teachers = [
        dict(name="layer", kind="layer", model="PE-Test", layer=2, seed=1,
             losses=dict(cosine=1.0)),
        dict(name="mask", kind="gt_masks", masks=str(tmp_path / "world" / "instances"),
             points_per_side=4, losses=dict(cosine=1.0)),
    ]
    data = dict(type="DistillImageDataset", roots=str(tmp_path / "world" / "images"),
                image_size=64, cache_dir=str(cache_dir), teachers=teachers)
    loader = dict(batch_size=2, num_workers=0, collate_fn=dict(type="default_collate"))
    config = tmp_path / "gt.py"
    config.write_text("\n".join([
        "default_scope = 'pe_dense'",
        f"teachers = {teachers!r}",
        f"cache = dict(dir={str(cache_dir)!r}, grid=8, shard_size=2, batch_size=2)",
        "model = dict(type='DistillModel', student=dict(model='PE-Test'), teachers=teachers, "
        "crop_size=32, views=dict(scale=(0.5, 1.0)), mask=None)",
        f"train_dataloader = dict({', '.join(f'{k}={v!r}' for k, v in loader.items())}, "
        f"sampler=dict(type='InfiniteSampler', shuffle=True), dataset={data!r})",
        "train_cfg = dict(type='IterBasedTrainLoop', max_iters=2)",
        "optim_wrapper = dict(optimizer=dict(type='AdamW', lr=1e-3))",
        "default_hooks = dict(logger=dict(type='LoggerHook', interval=1), "
        "checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=2))",
        "custom_hooks = [dict(type='ExportStudentHook')]",
        "log_processor = dict(by_epoch=False)",
        "randomness = dict(seed=0)",
    ]) + "\n")
    assert main(["distill-cache", str(config)]) == 0
    manifest = read_manifest(cache_dir)
    assert manifest["grid"] == [8, 8] and sorted(manifest["teachers"]) == ["layer", "mask"]
    cache = TargetCache(cache_dir)
    first = cache.get(manifest["files"][0])
    assert first["mask"].shape == (16, 8, 8) and first["layer"].shape == (64, 8, 8)
    assert first["mask"].abs().max() == 8  # whole cells inside or outside a segment
    work = tmp_path / "run"
    assert main(["distill", str(config), "--work-dir", str(work)]) == 0
    assert (work / "student.pt").is_file()
    logged = [json.loads(line) for line in next(work.glob("*/vis_data/scalars.json"))
              .read_text().splitlines()]
    assert all(np.isfinite(r["loss_mask_cosine"]) and "mask_cos" in r for r in logged)
    assert [r["step"] for r in logged] == [1, 2]


def test_cached_gt_targets_never_build_the_teacher(tmp_path: Path):
    """With every target cached, the model never builds (nor calls) the gt teacher."""
    from pe_dense.distill.data import DistillImageDataset
    from pe_dense.distill.model import DistillModel

    _scene(tmp_path / "world", 2)
    cfg = dict(name="mask", kind="gt_masks", masks=str(tmp_path / "world" / "instances"),
               points_per_side=2, losses=dict(cosine=1.0, locality=1.0))
    ds = DistillImageDataset(str(tmp_path / "world" / "images"), image_size=64)
    write_cache(tmp_path / "cache", ds.files, {"mask": build_teacher(cfg)}, {"mask": cfg},
                image_size=64, grid=(8, 8))
    ds = DistillImageDataset(str(tmp_path / "world" / "images"), image_size=64,
                             cache_dir=str(tmp_path / "cache"), teachers=[cfg])
    model = DistillModel(student=dict(model="PE-Test"), teachers=[cfg], crop_size=32)
    batch = [ds[0], ds[1]]
    images = torch.stack([b["image"] for b in batch])
    samples = {"mask": torch.stack([b["targets"]["mask"] for b in batch])}
    losses = model.loss(images, samples)
    sum(v for k, v in losses.items() if k.startswith("loss")).backward()
    assert model.student.conv1.weight.grad.abs().sum() > 0
    assert model._teachers == {}
    assert set(model.predict(images, samples)[0]) == {"mask_cos", "mask_corr"}
