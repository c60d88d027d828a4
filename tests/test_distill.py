"""Distillation: losses against hand-computed values, masking, views, teachers, cache, training
step, resume equality, student export and the distill-eval command (PE-Test, CPU)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from pe_dense import create_backbone
from pe_dense.backbone.inputs import normalize
from pe_dense.backbone.weights import read_checkpoint
from pe_dense.distill.cache import TargetCache, check_teachers, write_cache
from pe_dense.distill.data import DistillImageDataset
from pe_dense.distill.images import list_images, load_image, split_files
from pe_dense.distill.losses import (
    cosine_loss,
    locality_loss,
    locality_target,
    pairwise_correlation,
)
from pe_dense.distill.masking import apply_token_mask, block_mask
from pe_dense.distill.model import DistillModel, export_run
from pe_dense.distill.student import build_student, student_state_dict
from pe_dense.distill.teachers import build_teacher
from pe_dense.distill.views import Views, resample_box, sample_views

PE_TEACHER = dict(name="pe", kind="pe_layer", model="PE-Test", layer=2, seed=1,
                  losses=dict(cosine=1.0, locality=0.5), temperature=None)


# ----------------------------------------------------------------------------- losses

S2 = torch.tensor([[[1.0, 0.0], [0.0, 1.0]]])  # two orthogonal student tokens
T2 = torch.tensor([[[1.0, 0.0], [1.0, 1.0]]])  # teacher tokens at 0 and 45 degrees


def test_cosine_loss_hand_computed():
    # cos = 1 and 1/sqrt(2): loss = 1 - (1 + 0.70711) / 2
    assert cosine_loss(S2, T2).item() == pytest.approx(1 - (1 + 2**-0.5) / 2, abs=1e-6)
    assert cosine_loss(T2, T2).item() == pytest.approx(0.0, abs=1e-6)


def test_locality_loss_hand_computed():
    # student pairwise cos [[1, 0], [0, 1]]; teacher [[1, c], [c, 1]] with c = 1/sqrt(2)
    c = 2**-0.5
    f = math.exp(20 * (c - 1))
    assert locality_loss(S2, T2, temperature=20).item() == pytest.approx(2 * f**2 / 4, rel=1e-4)
    assert locality_loss(S2, T2, temperature=None).item() == pytest.approx(2 * c**2 / 4, rel=1e-5)
    target = locality_target(T2, 20)
    assert target[0, 0, 0].item() == pytest.approx(1.0)
    assert target[0, 0, 1].item() == pytest.approx(f)


def test_locality_loss_accepts_other_teacher_widths():
    s, t = torch.randn(2, 9, 8), torch.randn(2, 9, 30)
    assert locality_loss(s, t).ndim == 0
    with pytest.raises(ValueError, match="projection"):
        cosine_loss(s, t)
    with pytest.raises(ValueError, match="resample"):
        locality_loss(s, torch.randn(2, 8, 30))


def test_pairwise_correlation():
    x = torch.randn(3, 16, 8)
    assert torch.allclose(pairwise_correlation(x, x), torch.ones(3), atol=1e-5)
    y = torch.randn(3, 16, 8)
    assert pairwise_correlation(x, y).abs().max() < 0.6
    # hand check, 3 tokens: off-diagonal pairs (0,1) (0,2) (1,0) (1,2) (2,0) (2,1)
    c = 2**-0.5
    s = torch.tensor([[[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]])  # cosines 0, c, c
    t = torch.tensor([[[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]]])  # cosines 0, -1, 0
    expected = np.corrcoef([0, c, 0, c, c, c], [0, -1, 0, 0, -1, 0])[0, 1]
    assert pairwise_correlation(s, t).item() == pytest.approx(expected, abs=1e-5)
    assert expected == pytest.approx(-0.5)  # cov -sqrt(2)/3, variances 2/3 and 4/3


# ----------------------------------------------------------------------------- masking, views

def test_block_mask_ratio_and_blocks():
    mask = block_mask(4, (8, 8), ratio=0.75, block=2, generator=torch.Generator().manual_seed(0))
    assert mask.shape == (4, 8, 8) and mask.dtype == torch.bool
    assert (mask.sum(dim=(1, 2)) == 48).all()  # 12 of 16 blocks of 4 tokens
    blocks = mask.view(4, 4, 2, 4, 2)
    assert (blocks.all(dim=(2, 4)) == blocks.any(dim=(2, 4))).all()  # whole 2x2 blocks
    assert block_mask(1, (5, 7), ratio=0.5).shape == (1, 5, 7)
    with pytest.raises(ValueError, match="ratio"):
        block_mask(1, (4, 4), ratio=1.0)


def test_apply_token_mask_zeroes_patches():
    x = torch.rand(1, 3, 32, 48) + 0.5
    mask = torch.zeros(1, 2, 3, dtype=torch.bool)
    mask[0, 1, 2] = True
    y = apply_token_mask(x, mask, 16)
    assert (y[0, :, 16:, 32:] == 0).all() and torch.equal(y[0, :, :16], x[0, :, :16])


def test_resample_box_identity_and_flip():
    x = torch.randn(2, 5, 16, 16)
    full = Views.identity(2)
    assert torch.allclose(resample_box(x, full, (8, 8)),
                          F.interpolate(x, size=(8, 8), mode="bilinear", align_corners=False),
                          atol=1e-5)
    flipped = Views(full.boxes, torch.tensor([True, False]))
    out = resample_box(x, flipped, (16, 16))
    assert torch.allclose(out[0], x[0].flip(-1), atol=1e-5)
    assert torch.allclose(out[1], x[1], atol=1e-5)
    half = Views(torch.tensor([[0.5, 0.0, 1.0, 0.5]]), torch.tensor([False]))
    assert torch.allclose(resample_box(x[:1], half, (8, 8)), x[:1, :, :8, 8:], atol=1e-5)
    v = sample_views(64, scale=(0.3, 1.0), generator=torch.Generator().manual_seed(0))
    area = (v.boxes[:, 2] - v.boxes[:, 0]) * (v.boxes[:, 3] - v.boxes[:, 1])
    assert (v.boxes >= 0).all() and (v.boxes <= 1).all() and (area >= 0.29).all()


# ----------------------------------------------------------------------------- teachers

def test_pe_layer_teacher_matches_backbone_layer():
    teacher = build_teacher(PE_TEACHER)
    x = torch.rand(2, 3, 64, 96) * 2 - 1
    out = teacher(x, (4, 6))
    with torch.random.fork_rng():
        torch.manual_seed(1)
        ref_model = create_backbone("PE-Test")
    (ref,) = ref_model.forward_intermediates(x, indices=[2])
    assert out.shape == (2, 64, 4, 6)
    assert torch.allclose(out, ref, atol=1e-5)
    assert teacher.backbone.num_layers == 3 and not any(
        p.requires_grad for p in teacher.parameters())
    # a grid different from the teacher's own: tokens are resampled
    assert build_teacher({**PE_TEACHER, "image_size": 128})(x, (4, 6)).shape == (2, 64, 4, 6)
    desc = teacher.describe()
    assert desc["layer"] == 2 and desc["model"] == "PE-Test"


def test_build_teacher_errors():
    with pytest.raises(ValueError, match="kind"):
        build_teacher(dict(kind="dino"))
    with pytest.raises(ValueError, match="layer"):
        build_teacher(dict(kind="pe_layer", model="PE-Test"))


# ----------------------------------------------------------------------------- data and cache

@pytest.fixture
def image_dir(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    root = tmp_path / "images"
    (root / "video" / "seq").mkdir(parents=True)
    for i in range(3):
        Image.fromarray(rng.integers(0, 255, (40, 56, 3), dtype=np.uint8)).save(root / f"{i}.png")
    for i in range(2):
        Image.fromarray(rng.integers(0, 255, (30, 30, 3), dtype=np.uint8)).save(
            root / "video" / "seq" / f"{i:05d}.jpg")
    (root / "notes.txt").write_text("not an image")
    return root


def test_list_images_and_split(image_dir: Path):
    files = list_images(image_dir)
    assert len(files) == 5 and all(Path(f).is_absolute() for f in files)
    assert split_files(files, "val", 2) == files[1::2]
    assert split_files(files, "train", 2) == files[0::2]
    with pytest.raises(FileNotFoundError, match="does not exist"):
        list_images(image_dir / "missing")
    x = load_image(files[0], 64)
    assert x.shape == (3, 64, 64) and x.dtype == torch.uint8
    with Image.open(files[0]) as im:  # PIL bilinear resize of the RGB image, kept as uint8
        ref = np.asarray(im.convert("RGB").resize((64, 64), Image.BILINEAR))
    assert np.array_equal(x.permute(1, 2, 0).numpy(), ref)
    # the dataset yields these uint8 base images (the model normalises at entry)
    item = DistillImageDataset(image_dir, image_size=64)[0]
    assert item["image"].dtype == torch.uint8 and torch.equal(item["image"], x)


def test_cache_round_trip_and_resume(image_dir: Path, tmp_path: Path):
    files = list_images(image_dir)
    teacher = build_teacher(PE_TEACHER)
    calls = []

    class Counting(torch.nn.Module):
        def describe(self):
            return teacher.describe()

        def forward(self, images, grid):
            calls.append(images.shape[0])
            return teacher(images, grid)

    cache_dir = tmp_path / "cache"
    kw = dict(teacher_cfgs={"pe": PE_TEACHER}, image_size=64, grid=(4, 4), shard_size=2,
              batch_size=2)
    manifest = write_cache(cache_dir, files, {"pe": Counting()}, **kw)
    assert manifest["done"] == ["shard_00000.pt", "shard_00001.pt", "shard_00002.pt"]
    assert manifest["teachers"]["pe"]["description"]["layer"] == 2
    cache = TargetCache(cache_dir)
    for f in files:
        got = cache.get(f)["pe"]
        assert got.dtype == torch.float16 and got.shape == (64, 4, 4)
        ref = teacher(normalize(load_image(f, 64)[None]), (4, 4))[0]
        assert torch.allclose(got.float(), ref, atol=2e-2, rtol=1e-2)
    # interrupted run: the last shard is missing -> a rerun computes only that shard
    m = json.loads((cache_dir / "manifest.json").read_text())
    m["done"] = m["done"][:2]
    (cache_dir / "manifest.json").write_text(json.dumps(m))
    (cache_dir / "shard_00002.pt").unlink()
    with pytest.raises(ValueError, match="incomplete"):
        TargetCache(cache_dir)
    calls.clear()
    write_cache(cache_dir, files, {"pe": Counting()}, **kw)
    assert calls == [1]
    with pytest.raises(ValueError, match="different"):
        write_cache(cache_dir, files, {"pe": Counting()}, **{**kw, "grid": (2, 2)})
    # the dataset reads it, and refuses a changed teacher
    ds = DistillImageDataset(image_dir, image_size=64, cache_dir=str(cache_dir),
                             teachers=[PE_TEACHER])
    assert ds[0]["targets"]["pe"].shape == (64, 4, 4)
    assert check_teachers(cache_dir, [{**PE_TEACHER, "losses": dict(cosine=2.0)}]) == ["pe"]
    with pytest.raises(ValueError, match="written with config"):
        DistillImageDataset(image_dir, image_size=64, cache_dir=str(cache_dir),
                            teachers=[{**PE_TEACHER, "layer": 1}])


# ----------------------------------------------------------------------------- model

def _model(**kw) -> DistillModel:
    args = dict(student=dict(model="PE-Test", drop_path=0.1, ls_init_value=0.1),
                teachers=[PE_TEACHER], crop_size=64, mask=dict(ratio=0.75, block=2))
    return DistillModel(**{**args, **kw})


def test_one_step_lowers_the_loss():
    model = _model()
    images = torch.randint(0, 256, (4, 3, 96, 96), dtype=torch.uint8)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)

    def total() -> torch.Tensor:
        model.step.zero_()  # the same views, masks and drop path each time
        losses = model.loss(images)
        return sum(v for k, v in losses.items() if k.startswith("loss"))

    before = total()
    opt.zero_grad()
    before.backward()
    opt.step()
    with torch.no_grad():
        after = total()
    assert after.item() < before.item()
    logged = model.loss(images)
    assert set(logged) == {"loss_pe_cosine", "loss_pe_locality", "pe_cos", "pe_corr"}
    with pytest.raises(TypeError, match="uint8"):
        model.loss(images.float() / 127.5 - 1)


def test_stages_and_uint8_contract():
    model = _model().eval()
    images = torch.randint(0, 256, (2, 3, 96, 96), dtype=torch.uint8)
    x = model.preprocess(images)
    assert torch.equal(x, images.float() / 127.5 - 1)  # PE normalisation, mean = std = 0.5
    tokens = model(images)
    assert tokens.shape == (2, 16, 64)  # 64 px crop / patch 16 -> 4 x 4 tokens, width 64
    assert torch.equal(tokens, model.encode(model.resize(x)))
    rows = model.predict(images)
    assert len(rows) == 2 and set(rows[0]) == {"pe_cos", "pe_corr"}


def test_cached_targets_follow_the_view():
    model = _model(mask=None, views=dict(jitter=0.0))
    images = torch.rand(2, 3, 64, 64) * 2 - 1
    online = model.targets(images, Views.identity(2), (4, 4))
    cached = model.teacher("pe")(images, (4, 4))
    assert torch.allclose(model.targets(images, Views.identity(2), (4, 4), {"pe": cached})["pe"],
                          online["pe"], atol=1e-5)


def test_projection_rules():
    wide = dict(PE_TEACHER, model="PE-Spatial-T16-512", layer=0, losses=dict(cosine=1.0))
    model = _model(teachers=[wide])
    assert isinstance(model.proj["pe"], torch.nn.Linear) and model.proj["pe"].out_features == 192
    assert isinstance(_model().proj["pe"], torch.nn.Identity)
    projected = [dict(PE_TEACHER, project=True)]
    assert isinstance(_model(teachers=projected).proj["pe"], torch.nn.Linear)
    torch.manual_seed(5)  # initialisation does not depend on the global RNG
    first = _model(teachers=projected).state_dict()
    torch.manual_seed(6)
    second = _model(teachers=projected).state_dict()
    assert all(torch.equal(first[k], second[k]) for k in first)
    with pytest.raises(ValueError, match="project"):
        _model(teachers=[dict(wide, project=False)])
    with pytest.raises(ValueError, match="losses"):
        _model(teachers=[dict(PE_TEACHER, losses=dict(mse=1.0))])


def test_export_folds_layerscale_and_loads_with_create_backbone(tmp_path: Path):
    student = build_student("PE-Test", ls_init_value=0.1)
    with torch.no_grad():
        for name, p in student.named_parameters():
            if name.endswith("gamma"):
                p.uniform_(0.05, 0.5)
    path = tmp_path / "student.pt"
    torch.save(student_state_dict(student, "PE-Test"), path)
    loaded = create_backbone("PE-Test", weights=str(path))
    x = torch.rand(1, 3, 64, 64) * 2 - 1
    assert torch.allclose(loaded.forward_features(x), student.eval().forward_features(x),
                          atol=1e-5)
    # weights without LayerScale load into a student that adds it
    again = build_student("PE-Test", weights=str(path), ls_init_value=0.1)
    assert torch.allclose(again.transformer.resblocks[0].ls_1.gamma, torch.full((64,), 0.1))
    with pytest.raises(ValueError, match="do not fit"):
        build_student("PE-Spatial-T16-512", weights=str(path))


# ----------------------------------------------------------------------------- runner

def _cfg(image_dir: Path, work_dir: Path, max_iters: int):
    from mmengine.config import Config

    data = dict(type="DistillImageDataset", roots=str(image_dir), image_size=64)
    loader = dict(batch_size=2, num_workers=0, sampler=dict(type="InfiniteSampler", shuffle=True),
                  collate_fn=dict(type="default_collate"), dataset=data)
    return Config(dict(
        default_scope="pe_dense",
        work_dir=str(work_dir),
        model=dict(type="DistillModel", student=dict(model="PE-Test", drop_path=0.1,
                                                     ls_init_value=0.1),
                   teachers=[PE_TEACHER], crop_size=48, mask=dict(ratio=0.75, block=2)),
        train_dataloader=loader,
        train_cfg=dict(type="IterBasedTrainLoop", max_iters=max_iters),
        optim_wrapper=dict(optimizer=dict(type="Lamb", lr=1e-3, betas=(0.9, 0.95),
                                          weight_decay=0.05),
                           clip_grad=dict(max_norm=1.0)),
        param_scheduler=[dict(type="LinearLR", start_factor=0.5, by_epoch=False, begin=0, end=2),
                         dict(type="CosineAnnealingLR", by_epoch=False, begin=2, end=4)],
        default_hooks=dict(checkpoint=dict(type="CheckpointHook", by_epoch=False, interval=2),
                           logger=dict(type="LoggerHook", interval=1)),
        custom_hooks=[dict(type="ExportStudentHook")],
        log_processor=dict(by_epoch=False),
        randomness=dict(seed=0),
    ))


def test_resume_reproduces_uninterrupted_run(image_dir: Path, tmp_path: Path):
    from pe_dense.engine import build_runner
    from pe_dense.engine.tasks.distill import DistillModel as EngineDistillModel

    straight = build_runner(_cfg(image_dir, tmp_path / "a", 4))
    straight.train()
    assert type(straight.optim_wrapper.optimizer).__name__ == "Lamb"
    first = build_runner(_cfg(image_dir, tmp_path / "b", 4),
                         cfg_options={"train_cfg.max_iters": 2})
    first.train()
    resumed = build_runner(_cfg(image_dir, tmp_path / "b", 4), resume=True)
    resumed.train()
    assert isinstance(straight.model, EngineDistillModel)
    assert isinstance(straight.model, DistillModel)  # the library class: same state-dict keys
    a, b = straight.model.state_dict(), resumed.model.state_dict()
    assert set(a) == set(_model().state_dict())
    assert int(b["step"]) == 4
    for key in a:
        assert torch.equal(a[key], b[key]), key
    # the exported student loads with create_backbone and computes the trained student
    student = create_backbone("PE-Test", weights=str(tmp_path / "b" / "student.pt"))
    x = torch.rand(1, 3, 48, 48) * 2 - 1
    resumed.model.eval()
    assert torch.allclose(student.forward_features(x),
                          resumed.model.student.forward_features(x), atol=1e-5)
    heads = read_checkpoint(tmp_path / "b" / "distill_heads.pt")  # weights-only readable
    assert heads["variant"] == "PE-Test" and heads["step"] == 4
    # distill-eval reads the mmengine checkpoint (whole model) as well
    from pe_dense.distill.evaluate import build_eval_model

    cfg = _cfg(image_dir, tmp_path / "c", 4)
    loaded = build_eval_model(cfg.model, tmp_path / "b" / "iter_4.pth")
    assert torch.equal(loaded.student.conv1.weight, resumed.model.student.conv1.weight)


def test_distill_eval_command(image_dir: Path, tmp_path: Path):
    from pe_dense.cli import main

    model = _model()
    export_run(model, tmp_path / "run")
    config = tmp_path / "cfg.py"
    config.write_text(
        "default_scope = 'pe_dense'\n"
        f"teachers = [{PE_TEACHER!r}]\n"
        "model = dict(type='DistillModel', student=dict(model='PE-Test', ls_init_value=0.1), "
        "teachers=teachers, crop_size=64)\n"
        f"val_dataloader = dict(dataset=dict(type='DistillImageDataset', roots={str(image_dir)!r},"
        " image_size=64, split='val', holdout_every=2))\n")
    out = tmp_path / "eval"
    assert main(["distill-eval", str(config), "--checkpoint", str(tmp_path / "run" / "student.pt"),
                 "--out", str(out), "--pictures", "1", "--baseline"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["images"] == 2 and set(metrics["metrics"]) == {"pe_cos", "pe_corr"}
    assert set(metrics["constant_baseline"]) == {"pe_cos", "pe_corr"}
    # the exported student is the initial one here: same numbers as the baseline
    for key, value in metrics["metrics"].items():
        assert value == pytest.approx(metrics["baseline"][key], abs=1e-4)
    panel = np.asarray(Image.open(next(out.glob("pca_00_*.png"))))
    assert panel.shape == (192 + 16, 3 * 192, 3)


def test_constant_baseline_leave_one_out():
    from pe_dense.distill.evaluate import constant_baseline

    model = _model(teachers=[dict(PE_TEACHER, losses=dict(cosine=1.0))])
    a, b = torch.randn(64, 4, 4), torch.randn(64, 4, 4)

    class Two(torch.utils.data.Dataset):
        def __init__(self, maps):
            self.maps = maps

        def __len__(self):
            return len(self.maps)

        def __getitem__(self, i):
            return {"image": torch.zeros(3, 64, 64, dtype=torch.uint8), "index": i,
                    "targets": {"pe": self.maps[i]}}

    same = constant_baseline(model, Two([a, a]))
    assert same["pe_cos"] == pytest.approx(1.0, abs=1e-5)
    assert same["pe_corr"] == pytest.approx(1.0, abs=1e-5)
    # two images: each is predicted by the other one
    expected = F.cosine_similarity(a.flatten(1).T, b.flatten(1).T, dim=-1).mean().item()
    assert constant_baseline(model, Two([a, b]))["pe_cos"] == pytest.approx(expected, abs=1e-5)


def test_library_imports_without_mmengine():
    import subprocess
    import sys

    code = ("import sys; sys.modules['mmengine'] = None\n"
            "import pe_dense.distill.model, pe_dense.distill.data, pe_dense.distill.cache\n"
            "import pe_dense.distill.evaluate, pe_dense.distill.sam2_teacher\n"
            "import pe_dense.tracking, pe_dense.tracking.evaluate, pe_dense.data.video\n"
            "loaded = [m for m, v in sys.modules.items() if v is not None and m.startswith(("
            "'mmengine', 'pe_dense.engine', 'pe_dense.integrations', 'pe_dense.cli'))]\n"
            "assert not loaded, loaded\n")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parents[1])
