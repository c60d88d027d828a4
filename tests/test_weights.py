"""Checkpoint layouts, conversion round trips, strict-loading errors, CLI convert."""

from __future__ import annotations

import pytest
import torch

import pe_dense
from pe_dense.backbone import weights as W
from pe_dense.cli import main


@pytest.fixture
def model():
    torch.manual_seed(0)
    return pe_dense.create_backbone("PE-Test").eval()


def _same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def _loaded(source, name="PE-Test", **kw) -> pe_dense.PEViT:
    fresh = pe_dense.create_backbone(name, **kw)
    pe_dense.load_weights(fresh, source)
    return fresh


def _text_tower() -> dict:
    """Top-level text keys of a CLIP checkpoint, deliberately named like vision keys."""
    return {"positional_embedding": torch.randn(32, 16),
            "token_embedding.weight": torch.randn(9, 16),
            "transformer.resblocks.0.ln_1.weight": torch.randn(16), "logit_scale": torch.ones(())}


@pytest.mark.parametrize("wrap", ["flat", "state_dict", "weights", "module", "clip", "clip_module"])
def test_official_layouts(tmp_path, model, wrap):
    sd = model.state_dict()
    obj = {
        "flat": sd,
        "state_dict": {"state_dict": sd, "epoch": 3},
        "weights": {"weights": sd},
        "module": {f"module.{k}": v for k, v in sd.items()},
        "clip": {**{f"visual.{k}": v for k, v in sd.items()}, **_text_tower()},
        "clip_module": {"state_dict": {f"module.visual.{k}": v for k, v in sd.items()}},
    }[wrap]
    torch.save(obj, tmp_path / "ckpt.pt")
    assert _same(_loaded(tmp_path / "ckpt.pt").state_dict(), sd)


@pytest.mark.parametrize("name,kw", [("PE-Test", {}),
                                     ("PE-Test", {"pool_type": "attn", "output_dim": 24,
                                                  "use_ln_post": True}),
                                     ("PE-Test", {"use_cls_token": False, "ls_init_value": 0.1})])
def test_timm_round_trip_and_prefixes(name, kw):
    sd = pe_dense.create_backbone(name, **kw).state_dict()
    timm_sd = W.official_to_timm(sd)
    assert "patch_embed.proj.weight" in timm_sd and "blocks.0.attn.qkv.weight" in timm_sd
    assert _same(W.timm_to_official(timm_sd), sd)
    for prefix in ("", "timm_model.", "model.vision_tower.timm_model.", "visual.trunk."):
        official, fmt = W.to_official({f"{prefix}{k}": v for k, v in timm_sd.items()})
        assert fmt == "timm" and _same(official, sd)


def test_detectron2_round_trip_same_patch(tmp_path, model):
    sd = model.state_dict()
    d2 = W.official_to_detectron2(sd)
    assert d2["model"]["positional_embedding"].shape == (1, 17, 64)
    torch.save(d2, tmp_path / "d2.pth")
    official, fmt = W.to_official(W.read_checkpoint(tmp_path / "d2.pth"))
    assert fmt == "detectron2" and _same(official, sd)


def test_detectron2_detector_checkpoint(model):
    """Full detector checkpoints: backbone.net.* keys, RoPE buffers and head keys."""
    sd = model.state_dict()
    ckpt = {"model": {**{f"backbone.net.{k}": v for k, v in sd.items()},
                      "backbone.net.rope_win.freqs_cos": torch.zeros(16, 16),
                      "backbone.net.transformer.resblocks.0.attn.rope.freqs_sin": torch.zeros(4),
                      "backbone.simfp_2.0.weight": torch.zeros(3),
                      "roi_heads.box_predictor.cls_score.weight": torch.zeros(3)}}
    official, fmt = W.to_official(ckpt)
    assert fmt == "detectron2" and _same(official, sd)


def test_patch14_to_16_resample():
    p14 = pe_dense.create_backbone("PE-Test", patch_size=14, image_size=56)
    d2 = W.official_to_detectron2(p14.state_dict(), patch_size=16)
    assert d2["model"]["conv1.weight"].shape == (64, 3, 16, 16)
    det = _loaded(d2, patch_size=16, pretrain_image_size=64, image_size=1024)
    assert det.forward_features(torch.randn(1, 3, 64, 64)).shape == (1, 17, 64)
    with pytest.raises(pe_dense.WeightLoadError, match="patch_size=16"):
        _loaded(d2, patch_size=14, image_size=56)


def test_strict_errors_explain_and_load_nothing(model):
    target = pe_dense.create_backbone("PE-Test", image_size=128)
    before = {k: v.clone() for k, v in target.state_dict().items()}
    with pytest.raises(pe_dense.WeightLoadError) as err:
        pe_dense.load_weights(target, model.state_dict())
    msg = str(err.value)
    assert "positional_embedding: checkpoint 17x64 vs model 65x64" in msg
    assert "fix: build the model with image_size=64" in msg
    assert "looks like PE-Test" in msg
    assert _same(target.state_dict(), before)  # nothing loaded half-way

    partial = {k: v for k, v in model.state_dict().items() if "resblocks.3." not in k}
    partial["extra.weight"] = torch.zeros(1)
    with pytest.raises(pe_dense.WeightLoadError) as err:
        pe_dense.load_weights(pe_dense.create_backbone("PE-Test"), partial)
    assert "missing in checkpoint: transformer.resblocks.3.* (12 keys)" in str(err.value)
    assert "unexpected in checkpoint: extra.weight" in str(err.value)


def test_non_strict_loads_matching(model):
    target = pe_dense.create_backbone("PE-Test", image_size=128)
    report = pe_dense.load_weights(target, model.state_dict(), strict=False)
    assert [k for k, _, _ in report.mismatched] == ["positional_embedding"]
    assert torch.equal(target.conv1.weight, model.conv1.weight)


def test_variant_guess_for_real_layouts():
    with torch.device("meta"):
        sd = pe_dense.create_backbone("PE-Spatial-B16-512").state_dict()
    assert W.guess_variants(sd) == ["PE-Spatial-B16-512"]


def test_bad_files(tmp_path, model):
    torch.save(model.state_dict(), tmp_path / "good.pt")
    data = (tmp_path / "good.pt").read_bytes()
    (tmp_path / "cut.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(W.CheckpointError, match="truncated"):
        W.read_checkpoint(tmp_path / "cut.pt")
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(W.CheckpointError, match="is a text file, not a checkpoint"):
        W.read_checkpoint(tmp_path / "notes.txt")
    with pytest.raises(FileNotFoundError):
        W.read_checkpoint(tmp_path / "missing.pt")
    with pytest.raises(W.CheckpointError, match="no tensors found"):
        W.to_official({"epoch": 1, "optimizer": {"lr": 0.1}})


def test_hf_offline_message(monkeypatch):
    import huggingface_hub

    def offline(**kwargs):
        raise huggingface_hub.errors.LocalEntryNotFoundError("offline")

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", offline)
    with pytest.raises(RuntimeError, match="pass its local path"):
        pe_dense.create_backbone("PE-Test", weights="hf://facebook/PE-Spatial-T16-512")
    with pytest.raises(ValueError, match="hf://owner/repo"):
        W.read_checkpoint("hf://just-a-name")


def test_safetensors_and_atomic_save(tmp_path, model):
    sd = model.state_dict()
    W.save_checkpoint(W.official_to_timm(sd), tmp_path / "m.safetensors")
    assert _same(_loaded(tmp_path / "m.safetensors").state_dict(), sd)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.safetensors"]


@pytest.mark.parametrize("chain", [["timm", "official"], ["detectron2", "official"],
                                   ["timm", "detectron2", "timm", "official"]])
def test_cli_convert_round_trip(tmp_path, model, chain, capsys):
    src = tmp_path / "src.pt"
    torch.save({"state_dict": model.state_dict()}, src)
    for i, fmt in enumerate(chain):
        dst = tmp_path / f"{i}_{fmt}.pth"
        assert main(["convert", str(src), str(dst), "--to", fmt]) == 0
        src = dst
    assert "PE-Test" in capsys.readouterr().out
    assert _same(torch.load(src, weights_only=True), model.state_dict())


def test_cli_errors_are_clean(tmp_path, capsys):
    args = ["convert", str(tmp_path / "nope.pt"), str(tmp_path / "out.pt"), "--to", "timm"]
    assert main(args) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["info", "PE-Nope"]) == 2


def test_report_leads_with_hints_and_groups_blocks():
    partial = {k: v for k, v in pe_dense.create_backbone("PE-Test").state_dict().items()
               if not k.startswith(("transformer.resblocks.2.", "transformer.resblocks.3."))}
    with pytest.raises(pe_dense.WeightLoadError) as err:
        pe_dense.load_weights(pe_dense.create_backbone("PE-Test", image_size=128), partial)
    lines = str(err.value).splitlines()
    assert lines[0] == "checkpoint does not fit the model"
    assert lines[1] == "checkpoint format: official; 25 keys differ"
    assert lines[2].startswith("checkpoint: matches no known variant - width 64, 2 blocks")
    assert lines[3].startswith("model: PE-Test at 128 px - width 64, 4 blocks, patch 16, grid 8x8")
    assert lines[4] == "they differ in: layers, grid"
    assert lines[5].startswith("fix: no known variant has the checkpoint's sizes")
    assert "missing in checkpoint: transformer.resblocks.{2,3}.* (24 keys)" in lines


def test_checked_load_of_a_whole_model():
    """The one strict check also serves models with a PEViT inside (training checkpoints)."""
    def detector(image_size=64):
        model = torch.nn.Module()
        model.backbone = pe_dense.create_backbone("PE-Test", image_size=image_size)
        model.head = torch.nn.Linear(64, 3)
        return model

    src, dst = detector(), detector()
    report = W.load_state_dict_checked(dst, src.state_dict())
    assert report.ok and _same(dst.state_dict(), src.state_dict())
    with pytest.raises(pe_dense.WeightLoadError) as err:
        W.load_state_dict_checked(detector(image_size=128), src.state_dict(), headline="no fit")
    msg = str(err.value)
    assert msg.startswith("no fit\n") and "image_size=64" in msg
    assert "checkpoint backbone: looks like PE-Test" in msg
    heads_only = {k: v for k, v in src.state_dict().items() if k.startswith("head.")}
    target = detector()
    report = W.load_state_dict_checked(target, heads_only, exclude=("backbone.",))
    assert report.ok and torch.equal(target.head.weight, src.head.weight)
    report = W.load_state_dict_checked(detector(), heads_only, strict=False)
    assert report.missing and not report.unexpected


def test_detection_rules_resample_kernel_and_keep_unused_cls():
    windowed = dict(image_size=128, window_size=4, global_blocks=(1, 3), posemb_mode="tile",
                    pretrain_image_size=64)
    src = pe_dense.create_backbone("PE-Test", patch_size=14, image_size=56).state_dict()
    src = {k: v for k, v in src.items() if k != "class_embedding"}  # as the official detectors
    with pytest.raises(pe_dense.WeightLoadError, match="patch_size=14"):
        pe_dense.load_weights(pe_dense.create_backbone("PE-Test", **windowed), src)
    target = pe_dense.create_backbone("PE-Test", **windowed)
    cls_before = target.class_embedding.clone()
    report = pe_dense.load_weights(target, src, detection=True)
    assert report.ok and target.conv1.weight.shape == (64, 3, 16, 16)
    assert torch.equal(target.class_embedding, cls_before)
