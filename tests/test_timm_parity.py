"""Numerical agreement with timm's ``vit_pe_*`` models (timm 1.0.31, a dev dependency).

timm differs from the official code at non-native sizes in two settings
(docs/pe_reference.md 3.5): it rescales RoPE positions by ``ref_feat_shape / grid`` and resamples
the position embedding bicubically with antialias. With ``rope.ref_feat_shape = None`` (set after
creation; the factory drops None kwargs) and bilinear, non-antialiased resampling, timm computes
what the official code computes - and so what PEViT computes.
"""

from __future__ import annotations

import functools

import pytest
import torch

import pe_dense
from pe_dense.backbone.weights import official_to_timm

timm = pytest.importorskip("timm", minversion="1.0.31")


@pytest.fixture
def official_settings(monkeypatch):
    import timm.models.eva as eva

    bilinear = functools.partial(eva.resample_abs_pos_embed, interpolation="bilinear",
                                 antialias=False)
    monkeypatch.setattr(eva, "resample_abs_pos_embed", bilinear)


def _pair(ours_name: str, timm_name: str, depth: int):
    torch.manual_seed(0)
    ours = pe_dense.create_backbone(ours_name, layers=depth).eval()
    theirs = timm.create_model(timm_name, pretrained=False, depth=depth, dynamic_img_size=True)
    theirs.load_state_dict(official_to_timm(ours.state_dict()), strict=True)
    theirs.rope.ref_feat_shape = None
    return ours, theirs.eval()


@pytest.mark.parametrize("size", ["native", (224, 320)])
def test_spatial_tokens_match_timm(official_settings, size):
    ours, theirs = _pair("PE-Spatial-T16-512", "vit_pe_spatial_tiny_patch16_512", depth=4)
    x = torch.randn(1, 3, *((512, 512) if size == "native" else size))
    with torch.no_grad():
        ref = theirs.forward_features(x)
        out = ours.forward_features(x)
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)
    if size != "native":  # the default timm settings would not match here
        plain = timm.create_model("vit_pe_spatial_tiny_patch16_512", depth=4, dynamic_img_size=True)
        plain.load_state_dict(theirs.state_dict())
        with torch.no_grad():
            assert not torch.allclose(plain.eval().forward_features(x), out, atol=1e-3)


@pytest.mark.parametrize("size", ["native", (256, 192)])
def test_core_embedding_matches_timm(official_settings, size):
    ours, theirs = _pair("PE-Core-T16-384", "vit_pe_core_tiny_patch16_384", depth=3)
    x = torch.randn(2, 3, *((384, 384) if size == "native" else size))
    with torch.no_grad():
        torch.testing.assert_close(ours.forward_features(x, norm=True),
                                   theirs.forward_features(x), rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(ours(x), theirs(x), rtol=1e-5, atol=1e-5)


def test_gigantic_layout_matches_timm(official_settings):
    """No cls token, LayerScale, patch 14 (Spatial-G), two blocks, non-native size."""
    ours, theirs = _pair("PE-Spatial-G14-448", "vit_pe_spatial_gigantic_patch14_448", depth=2)
    x = torch.randn(1, 3, 168, 224)
    with torch.no_grad():
        torch.testing.assert_close(ours.forward_features(x), theirs.forward_features(x),
                                   rtol=1e-5, atol=1e-5)
