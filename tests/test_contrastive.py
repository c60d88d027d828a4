"""Stage 1 of the paper in miniature: captioned folders, the CLIP loss, retrieval metrics, and
`pe-dense train` of a contrastive PE-Mini whose clip.pt `pe-dense classify` reads (CPU, seconds)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from pe_dense.data.captions import CaptionDataset, read_captions
from pe_dense.tasks.open_vocab.contrastive import clip_loss, retrieval_metrics

pytest.importorskip("open_clip")  # the CLIP tokenizer's vocabulary

COLOURS = {"red": (220, 30, 30), "blue": (30, 30, 220)}


def _captioned(root: Path, n: int = 16) -> Path:
    (root / "images").mkdir(parents=True)
    rng = np.random.default_rng(0)
    records = []
    for i in range(n):
        name = list(COLOURS)[i % 2]
        a = np.full((48, 48, 3), 128, np.uint8)
        x, y = rng.integers(4, 28, 2)
        a[y:y + 16, x:x + 16] = COLOURS[name]
        Image.fromarray(a).save(root / "images" / f"{i:03d}.png")
        records.append({"file": f"{i:03d}.png", "caption": f"a {name} square", "extra": 1})
    (root / "captions.json").write_text(json.dumps(records))
    return root


def test_clip_loss_is_low_for_aligned_pairs_and_log_b_for_uninformative() -> None:
    x = F.normalize(torch.randn(8, 16), dim=-1)
    aligned, acc = clip_loss(x, x, torch.tensor(100.0))
    assert acc == 1 and aligned < 0.01
    flat, _ = clip_loss(x, x, torch.tensor(1e-6))  # scale ~0: every logit equal
    assert flat == pytest.approx(np.log(8), abs=1e-4)


def test_retrieval_counts_identical_captions_as_hits() -> None:
    text = F.normalize(torch.tensor([[1.0, 0], [1.0, 0], [0, 1.0]]), dim=-1)
    image = F.normalize(torch.tensor([[1.0, 0.1], [1.0, 0.1], [0.1, 1.0]]), dim=-1)
    m = retrieval_metrics(image, text)
    assert m["i2t_r1"] == 1.0 and m["t2i_r1"] == 1.0  # images 0 and 1 share a caption
    m = retrieval_metrics(image.flip(0), text)
    assert m["i2t_r1"] == pytest.approx(1 / 3) and m["i2t_r5"] == 1.0  # only image 1 right


def test_caption_dataset_items_and_errors(tmp_path: Path) -> None:
    root = _captioned(tmp_path / "c", n=4)
    ds = CaptionDataset(root, image_size=32)
    item = ds[1]
    assert item["image"].shape == (3, 32, 32) and item["image"].dtype == torch.uint8
    assert item["caption"] == "a blue square" and len(ds) == 4
    assert read_captions(root)[0] == {"file": "000.png", "caption": "a red square"}
    with pytest.raises(FileNotFoundError, match="make_world"):
        CaptionDataset(tmp_path / "nothing")
    (root / "captions.json").write_text(json.dumps([{"file": "000.png"}]))
    with pytest.raises(ValueError, match="needs a 'file' and a 'caption'"):
        CaptionDataset(root)
    (root / "captions.json").write_text(json.dumps([{"file": "zzz.png", "caption": "x"}]))
    with pytest.raises(FileNotFoundError, match="zzz.png"):
        CaptionDataset(root)


def test_train_writes_an_official_clip_that_classify_reads(tmp_path: Path) -> None:
    from pe_dense.backbone.clip import create_clip
    from pe_dense.backbone.factory import create_backbone
    from pe_dense.cli.main import main

    root = _captioned(tmp_path / "c")
    work = tmp_path / "work"
    config = Path(__file__).parents[1] / "configs/paper_mini/clip_pe-mini_world.py"
    assert main(["train", str(config), "--work-dir", str(work), "--cfg-options",
                 f"train_dataloader.dataset.root={root}", f"val_dataloader.dataset.root={root}",
                 "train_dataloader.batch_size=8", "val_dataloader.batch_size=8",
                 "train_cfg.max_iters=4", "train_cfg.val_interval=4",
                 "default_hooks.checkpoint.interval=4"]) == 0
    clip_file = work / "clip.pt"
    state = torch.load(clip_file, map_location="cpu", weights_only=True)
    assert "visual.conv1.weight" in state and "text_projection" in state
    create_clip("PE-Mini", weights=str(clip_file))  # strict, official layout
    assert create_backbone("PE-Mini", weights=str(clip_file)).num_layers == 8
    out = tmp_path / "zs.json"
    assert main(["classify", str(root / "images/000.png"), "--model", "PE-Mini", "--weights",
                 str(clip_file), "--labels", "red square,blue square", "--templates", "none",
                 "--json", str(out)]) == 0
    top = json.loads(out.read_text())[0]["top"]
    assert {t["label"] for t in top} == {"red square", "blue square"}
    assert sum(t["prob"] for t in top) == pytest.approx(1.0, abs=1e-4)
