"""PE-Core's text tower, the CLIP tokenizer and create_clip: exactness and strict loading."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

pytest.importorskip("ftfy")
pytest.importorskip("regex")

from pe_dense.backbone.clip import create_clip, create_text_tower  # noqa: E402
from pe_dense.backbone.text import TEXT_VARIANTS, TextTransformer, text_variant  # noqa: E402
from pe_dense.backbone.tokenizer import VOCAB_SIZE, ClipTokenizer  # noqa: E402
from pe_dense.backbone.weights import WeightLoadError  # noqa: E402

OFFICIAL = Path(os.environ.get("PE_OFFICIAL_REPO",
                               Path(__file__).resolve().parents[2] / "ext" / "perception_models"))
PROMPTS = ["", "a photo of a dog", "  A   PHOTO\tof the DOG!! ", "word " * 40]


@pytest.fixture(scope="module")
def tok() -> ClipTokenizer:
    return ClipTokenizer(32)


def test_tokenizer_known_ids(tok):
    # OpenAI CLIP's ids for these words (a 320, photo 1125, of 539, cat 2368, "." 269).
    assert tok.encode("a photo of a cat.") == [320, 1125, 539, 320, 2368, 269]
    assert tok.sot_id == VOCAB_SIZE - 2 and tok.eot_id == VOCAB_SIZE - 1


def test_tokenizer_empty_long_and_cleaning(tok):
    ids = tok(["", "word " * 40, "  A   PHOTO\tof\n the DOG ", "a photo of the dog",
               "fish &amp; chips", "fish & chips"])
    assert ids.shape == (6, 32) and ids.dtype == torch.long
    assert ids[0, :2].tolist() == [tok.sot_id, tok.eot_id] and not ids[0, 2:].any()
    assert ids[1, -1] == tok.eot_id and (ids[1] != 0).all()  # cut, end token kept last
    assert torch.equal(ids[2], ids[3])  # whitespace collapsed, lower-cased
    assert torch.equal(ids[4], ids[5])  # HTML entities unescaped
    assert tok.decode(ids[3].tolist()) == "a photo of the dog"
    with pytest.raises(TypeError):
        tok([3])
    with pytest.raises(ValueError, match="at least 2"):
        ClipTokenizer(1)


def _reference_text(tower: TextTransformer, ids: torch.Tensor) -> torch.Tensor:
    """The text tower written with nn.MultiheadAttention and an additive -inf causal mask."""
    x = tower.token_embedding(ids) + tower.positional_embedding[: ids.shape[1]]
    t = ids.shape[1]
    mask = torch.full((t, t), float("-inf")).triu(1)
    for blk in tower.transformer.resblocks:
        mha = nn.MultiheadAttention(tower.text_width, tower.text_heads, batch_first=True)
        mha.load_state_dict(blk.attn.state_dict())
        y = blk.ln_1(x)
        x = x + mha(y, y, y, attn_mask=mask, need_weights=False)[0]
        x = x + blk.mlp(blk.ln_2(x))
    x = tower.ln_final(x)
    return x[torch.arange(x.shape[0]), ids.argmax(-1)] @ tower.text_projection


def test_text_tower_matches_reference(tok):
    tower = TextTransformer(context_length=32, width=64, heads=4, layers=2, output_dim=24).eval()
    ids = tok(PROMPTS)
    with torch.no_grad():
        torch.testing.assert_close(tower(ids), _reference_text(tower, ids), atol=1e-5, rtol=1e-5)


def test_text_variants_table():
    assert text_variant("PE-Core-G14-448").context_length == 72
    assert TEXT_VARIANTS["PE-Core-B16-224"] == TEXT_VARIANTS["PE-Core-L14-336"]
    with pytest.raises(ValueError, match="no text tower.*bridge"):
        text_variant("PE-Spatial-B16-512")


def test_create_clip_loads_official_layout_strictly(tmp_path):
    src = create_clip("PE-Test").eval()
    sd = src.state_dict()
    assert "visual.conv1.weight" in sd and "token_embedding.weight" in sd and "logit_scale" in sd
    path = tmp_path / "clip.pt"
    torch.save({"state_dict": {f"module.{k}": v for k, v in sd.items()}}, path)
    clip = create_clip("PE-Test", weights=str(path)).eval()
    ids = clip.tokenize(PROMPTS)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(clip.encode_text(ids), src.encode_text(ids))
        assert torch.equal(clip.encode_image(x), src.encode_image(x))
        img, txt, scale = clip(x, ids)
    assert img.shape == (2, 32) and txt.shape == (4, 32)
    assert torch.allclose(img.norm(dim=-1), torch.ones(2)) and scale > 1
    tower, _ = create_text_tower("PE-Test", weights=str(path))
    with torch.no_grad():
        assert torch.equal(tower.eval()(ids), src.encode_text(ids))


def test_create_clip_bad_checkpoints():
    sd = create_clip("PE-Test").state_dict()
    vision_only = {k[len("visual."):]: v for k, v in sd.items() if k.startswith("visual.")}
    with pytest.raises(WeightLoadError, match="vision tower only"):
        create_clip("PE-Test", weights=vision_only)
    no_text = {k: v for k, v in sd.items() if k.startswith("visual.")}
    with pytest.raises(WeightLoadError, match="no text tower"):
        create_clip("PE-Test", weights=no_text)
    fewer = {k: v for k, v in sd.items() if not k.startswith("transformer.resblocks.1.")}
    with pytest.raises(WeightLoadError, match="1 blocks"):
        create_clip("PE-Test", weights=fewer)
    with pytest.raises(ValueError, match="no text tower"):
        create_clip("PE-Lang-L14-448")


def test_text_tower_seed_is_reproducible():
    a, _ = create_text_tower("PE-Test", seed=3)
    b, _ = create_text_tower("PE-Test", seed=3)
    assert torch.equal(a.text_projection, b.text_projection)


@pytest.mark.skipif(not (OFFICIAL / "core" / "vision_encoder" / "pe.py").is_file(),
                    reason="official perception_models checkout not found ($PE_OFFICIAL_REPO)")
def test_matches_official_clip():
    pytest.importorskip("einops")
    pytest.importorskip("timm")
    sys.path.insert(0, str(OFFICIAL))
    from core.vision_encoder.config import PEConfig, PETextConfig
    from core.vision_encoder.pe import CLIP as OfficialCLIP
    from core.vision_encoder.tokenizer import SimpleTokenizer

    vision = PEConfig(patch_size=16, width=64, layers=4, heads=4, mlp_ratio=2.0, output_dim=32,
                      image_size=64, use_cls_token=True, pool_type="attn", use_ln_post=True)
    text = PETextConfig(context_length=16, width=64, heads=4, layers=2, output_dim=32)
    official = OfficialCLIP(vision, text).eval()
    with torch.no_grad():  # the official init leaves these two uninitialised (torch.empty)
        official.positional_embedding.normal_(0, 0.1)
        official.text_projection.normal_(0, 0.2)
    ours = create_clip("PE-Test", weights=official.state_dict()).eval()
    for ctx in (16, 32, 72):
        reference = SimpleTokenizer(context_length=ctx)(PROMPTS)
        assert torch.equal(ClipTokenizer(ctx)(PROMPTS), reference)
    ids = ours.tokenize(PROMPTS)
    x = torch.randn(2, 3, 64, 80)
    with torch.no_grad():
        torch.testing.assert_close(ours.encode_text(ids), official.encode_text(ids))
        torch.testing.assert_close(ours.encode_image(x), official.encode_image(x))
