"""Zero-shot classification, training-free text segmentation, the bridge and their CLIs."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("ftfy")

from pe_dense.backbone.clip import create_clip  # noqa: E402
from pe_dense.cli.main import main  # noqa: E402
from pe_dense.tasks.open_vocab.bridge import BridgeSegmenter, load_bridge, save_bridge  # noqa: E402
from pe_dense.tasks.open_vocab.dense_clip import ClipSegmenter, dense_clip_embeddings  # noqa: E402
from pe_dense.tasks.open_vocab.model import segment_image  # noqa: E402
from pe_dense.tasks.open_vocab.prompts import get_templates, parse_prompts  # noqa: E402
from pe_dense.tasks.open_vocab.zero_shot import ZeroShotClassifier  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def clip_file(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("clip") / "pe-test-clip.pt"
    torch.save(create_clip("PE-Test").state_dict(), path)
    return str(path)


@pytest.fixture()
def image_file(tmp_path) -> str:
    from PIL import Image

    path = tmp_path / "img.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (50, 70, 3), np.uint8)).save(path)
    return str(path)


def test_prompts_and_templates(tmp_path):
    assert parse_prompts(" sky, road ,,car") == ["sky", "road", "car"]
    assert len(get_templates("imagenet")) == 80 and get_templates("none") == ("{}",)
    (tmp_path / "t.txt").write_text("a photo of {}.\n\nart of {}\n")
    assert get_templates(str(tmp_path / "t.txt")) == ("a photo of {}.", "art of {}")
    for bad in ("", " , "):
        with pytest.raises(ValueError, match="no prompts"):
            parse_prompts(bad)
    with pytest.raises(ValueError, match="duplicate"):
        parse_prompts("a,a")
    with pytest.raises(ValueError, match="templates"):
        get_templates("nope")


def test_zero_shot_classifier_ranks_labels():
    clip = create_clip("PE-Test")
    images = [np.full((40, 60, 3), v, np.uint8) for v in (0, 200)]
    top = ZeroShotClassifier(clip, ["a", "b", "c"], get_templates("simple"))(images, topk=2)
    assert len(top) == 2 and len(top[0]) == 2
    assert top[0][0][1] >= top[0][1][1] and {t[0] for t in top[1]} <= {"a", "b", "c"}


def test_maskclip_on_one_token_equals_the_image_embedding():
    """One patch, no cls token: MaskCLIP's value path (residual + MLP kept) is the pooled
    forward exactly, since attention over a single token is the identity."""
    clip = create_clip("PE-Test", use_cls_token=False).eval()
    x = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        dense = dense_clip_embeddings(clip.visual, x, layer=-1, recipe="maskclip")
        torch.testing.assert_close(dense[:, :, 0, 0], clip.encode_image(x))


@pytest.mark.parametrize("recipe", ["maskclip", "selfself"])
def test_clip_segmenter_outputs(recipe):
    seg = ClipSegmenter(create_clip("PE-Test"), ["sky", "road", "car"], recipe=recipe, layer=2)
    labels, scores = segment_image(seg, np.zeros((50, 70, 3), np.uint8), short_side=64)
    assert labels.shape == (50, 70) and scores.shape == (3, 50, 70)
    np.testing.assert_allclose(scores.sum(0), 1.0, atol=1e-5)
    with pytest.raises(ValueError, match="layer 9 is out of range"):
        ClipSegmenter(create_clip("PE-Test"), ["a"], layer=9)
    with pytest.raises(ValueError, match="recipe"):
        ClipSegmenter(create_clip("PE-Test"), ["a"], recipe="other")


def _bridge() -> BridgeSegmenter:
    return BridgeSegmenter(backbone=dict(name="PE-Test"), prompts=["circle", "square"],
                           text=dict(name="PE-Test", seed=0), hidden=32)


def test_bridge_train_step_predict_and_file(tmp_path):
    torch.manual_seed(0)
    model = _bridge()
    assert not any(p.requires_grad for p in model.features.parameters())
    images = torch.randint(0, 255, (2, 3, 64, 64), dtype=torch.uint8)
    labels = torch.zeros(2, 64, 64, dtype=torch.long)
    labels[:, :32] = 1
    labels[:, 40:, 40:] = 2
    samples = [{"label": labels[i], "size": (64, 64)} for i in range(2)]
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    losses = []
    for _ in range(15):
        loss = model.loss(images, samples)["loss_ce"]
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.7 * losses[0]
    model.eval()
    out = model.predict(images, [{"size": (64, 64), "gt_label": labels[0]}] * 2)
    assert out[0]["pred"].shape == (64, 64) and out[0]["scores"].shape == (3, 64, 64)
    save_bridge(model, tmp_path / "bridge.pth")
    again = load_bridge(tmp_path / "bridge.pth").eval()
    with torch.no_grad():
        torch.testing.assert_close(again(images), model(images))
    more = load_bridge(tmp_path / "bridge.pth", prompts=["circle", "square", "triangle"])
    assert more.class_names == ("background", "circle", "square", "triangle")
    (tmp_path / "other.pth").write_bytes(b"")
    torch.save({"x": 1}, tmp_path / "other.pth")
    with pytest.raises(ValueError, match="not a pe_dense bridge"):
        load_bridge(tmp_path / "other.pth")


def test_bridge_blocks_adapter_shapes_and_file(tmp_path):
    torch.manual_seed(0)
    model = BridgeSegmenter(backbone=dict(name="PE-Test"), prompts=["circle", "square"],
                            text=dict(name="PE-Test", seed=0), patch_adapter="blocks",
                            adapter_depth=3, hidden=32, embed_dim=48, freeze_backbone=False)
    blocks = [m for m in model.adapter.modules() if type(m).__name__ == "ConvBlock"]
    assert len(blocks) == 3 and model.spec["adapter_depth"] == 3
    # residual blocks start as the identity (zero-initialised last conv)
    x = torch.randn(1, 32, 4, 4)
    torch.testing.assert_close(blocks[0](x), x)
    images = torch.randint(0, 255, (2, 3, 64, 64), dtype=torch.uint8)
    assert model.encode(model.preprocess(images, None)).shape == (2, 48, 4, 4)
    labels = torch.zeros(2, 64, 64, dtype=torch.long)
    labels[:, 16:48, 16:48] = 1
    loss = model.loss(images, [{"label": labels[i], "size": (64, 64)} for i in range(2)])
    loss["loss_ce"].backward()
    assert blocks[-1].conv2.weight.grad is not None
    assert model.features.backbone.conv1.weight.grad is not None
    model.eval()
    save_bridge(model, tmp_path / "bridge.pth")
    again = load_bridge(tmp_path / "bridge.pth").eval()
    assert again.spec["patch_adapter"] == "blocks" and again.spec["adapter_depth"] == 3
    with torch.no_grad():
        torch.testing.assert_close(again(images), model(images))
    with pytest.raises(ValueError, match="patch_adapter='cnn'"):
        BridgeSegmenter(backbone=dict(name="PE-Test"), prompts=["a"],
                        text=dict(name="PE-Test"), patch_adapter="cnn")


def test_classify_cli(clip_file, image_file, tmp_path, capsys):
    out = tmp_path / "top.json"
    assert main(["classify", image_file, "--model", "PE-Test", "--weights", clip_file,
                 "--labels", "a cat,a dog", "--topk", "1", "--json", str(out)]) == 0
    assert "a cat" in capsys.readouterr().out or "a dog" in out.read_text()
    labels = tmp_path / "labels.txt"
    labels.write_text("# classes\ncat\n\ndog\n")
    assert main(["classify", image_file, "--model", "PE-Test", "--labels-file",
                 str(labels), "--templates", "none"]) == 0
    assert main(["classify", image_file, "--model", "PE-Test", "--labels", " , "]) == 2
    assert "no prompts" in capsys.readouterr().err
    assert main(["classify", image_file, "--model", "PE-Spatial-T16-512", "--labels", "a"]) == 2
    assert "has no text tower" in capsys.readouterr().err


def test_segment_text_cli(clip_file, image_file, tmp_path, capsys):
    out = tmp_path / "seg"
    assert main(["segment-text", image_file, "--model", "PE-Test", "--weights", clip_file,
                 "--prompts", "sky,road", "--out", str(out), "--short-side", "64",
                 "--recipe", "maskclip", "--layer", "-2", "--templates", "simple"]) == 0
    names = sorted(p.name for p in out.iterdir())
    assert names == ["img_labels.png", "img_overlay.png", "img_scores.npz", "img_scores.png"]
    scores = np.load(out / "img_scores.npz")
    assert scores["scores"].shape == (2, 50, 70) and list(scores["names"]) == ["sky", "road"]
    assert main(["segment-text", image_file, "--model", "PE-Spatial-T16-512", "--prompts",
                 "sky", "--out", str(out)]) == 2
    assert "--bridge" in capsys.readouterr().err
    assert main(["segment-text", image_file, "--model", "PE-Test", "--out", str(out)]) == 2
    assert "no prompts" in capsys.readouterr().err
    # a CLIP checkpoint without its text tower
    vision = {k: v for k, v in torch.load(clip_file).items() if k.startswith("visual.")}
    torch.save(vision, tmp_path / "vision.pt")
    assert main(["segment-text", image_file, "--model", "PE-Test", "--weights",
                 str(tmp_path / "vision.pt"), "--prompts", "a", "--out", str(out)]) == 2
    assert "no text tower" in capsys.readouterr().err


def test_segment_text_cli_with_bridge(image_file, tmp_path, capsys):
    save_bridge(_bridge(), tmp_path / "bridge.pth")
    out = tmp_path / "seg"
    assert main(["segment-text", image_file, "--bridge", str(tmp_path / "bridge.pth"),
                 "--out", str(out), "--short-side", "64"]) == 0
    assert np.load(out / "img_scores.npz")["scores"].shape == (3, 50, 70)
    assert main(["segment-text", image_file, "--bridge", str(tmp_path / "bridge.pth"),
                 "--model", "PE-Spatial-T16-512", "--out", str(out)]) == 2
    assert "was trained on PE-Test" in capsys.readouterr().err


def test_bridge_config_trains_and_writes_bridge(tmp_path):
    pytest.importorskip("mmengine")
    pytest.importorskip("pycocotools")
    sys.path.insert(0, str(ROOT / "tools"))
    from make_shapes_dataset import main as make_shapes

    data = tmp_path / "shapes"
    make_shapes([str(data), "--size", "64", "--train", "4", "--val", "2"])
    from pe_dense.data.coco_semantic import CocoSemanticDataset

    ds = CocoSemanticDataset(str(data / "annotations/instances_val.json"), str(data / "val"))
    sample = ds[0]
    assert ds.classes == ("background", "circle", "square", "triangle")
    assert sample["label"].shape == (64, 64) and int(sample["label"].max()) in (1, 2, 3)
    work = tmp_path / "work"
    root = f"{data}/"
    rc = main(["train", str(ROOT / "configs/open_vocab/bridge_pe-test_shapes_cpu.py"),
               "--work-dir", str(work), "--cfg-options", f"data_root={root}",
               f"train_dataloader.dataset.ann_file={root}annotations/instances_train.json",
               f"train_dataloader.dataset.img_dir={root}train",
               f"val_dataloader.dataset.ann_file={root}annotations/instances_val.json",
               f"val_dataloader.dataset.img_dir={root}val", "train_dataloader.batch_size=2",
               f"model.text.cache={tmp_path}/cache.pt", "model.backbone.image_size=64",
               "train_cfg.max_iters=2", "train_cfg.val_interval=2",
               "param_scheduler.1.begin=1", "param_scheduler.1.end=2",
               "param_scheduler.0.end=1"])
    assert rc == 0
    model = load_bridge(work / "bridge.pth")
    assert model.class_names == ("background", "circle", "square", "triangle")
