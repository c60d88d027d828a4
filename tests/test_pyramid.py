"""SimpleFeaturePyramid / MultiLayerPyramid on the tiny PE-Test backbone."""

from __future__ import annotations

import pytest
import torch

from pe_dense import create_backbone
from pe_dense.necks.pyramid import LayerNorm2d, MultiLayerPyramid, SimpleFeaturePyramid


def test_simple_pyramid_shapes_and_output_shape():
    fpn = SimpleFeaturePyramid({"name": "PE-Test"}, out_channels=32)
    assert fpn.output_shape() == {"p2": (32, 4), "p3": (32, 8), "p4": (32, 16), "p5": (32, 32),
                                  "p6": (32, 64)}
    out = fpn(torch.randn(2, 3, 64, 128))
    assert list(out) == ["p2", "p3", "p4", "p5", "p6"]
    for name, (c, s) in fpn.output_shape().items():
        assert out[name].shape == (2, c, 64 // s, 128 // s)


def test_simple_pyramid_reads_the_chosen_block():
    backbone = create_backbone("PE-Test")
    fpn = SimpleFeaturePyramid(backbone, in_index=1, scale_factors=(1.0,), norm="",
                               top_block=False, out_channels=8).eval()
    x = torch.randn(1, 3, 64, 64)
    (ref,) = backbone.forward_intermediates(x, [1])
    stage = fpn.stages["p4"]
    assert torch.allclose(fpn(x)["p4"], stage(ref), atol=1e-6)


def test_pyramid_checks_the_input_size_instead_of_padding():
    fpn = SimpleFeaturePyramid({"name": "PE-Test"}, out_channels=8)
    assert fpn.size_divisibility == 64
    assert fpn(torch.randn(1, 3, 128, 64))["p4"].shape[-2:] == (8, 4)
    with pytest.raises(ValueError, match=r"80x48 .*nearest valid 128x64.*size_divisor=64"):
        fpn(torch.randn(1, 3, 80, 48))


def test_old_square_pad_is_only_a_check():
    fpn = SimpleFeaturePyramid({"name": "PE-Test"}, out_channels=8, square_pad=128)
    plain = SimpleFeaturePyramid({"name": "PE-Test"}, out_channels=8)
    assert fpn.state_dict().keys() == plain.state_dict().keys()
    assert fpn(torch.randn(1, 3, 128, 128))["p2"].shape[-2:] == (32, 32)
    with pytest.raises(ValueError, match="square_size=128"):
        fpn(torch.randn(1, 3, 64, 128))
    with pytest.raises(ValueError, match="multiple"):
        SimpleFeaturePyramid({"name": "PE-Test"}, square_pad=100)


def test_patch14_is_rejected_with_advice():
    with pytest.raises(ValueError, match="patch_size=16"):
        SimpleFeaturePyramid({"name": "PE-Test", "patch_size": 14})


def test_multilayer_pyramid_frozen_backbone():
    fpn = MultiLayerPyramid({"name": "PE-Test"}, indices=(0, 1, 2, 3), out_channels=16)
    fpn.train()
    assert not fpn.backbone.training
    out = fpn(torch.randn(1, 3, 64, 64))
    out["p3"].sum().backward()
    assert all(p.grad is None for p in fpn.backbone.parameters())
    assert fpn.stages["p3"][1].weight.grad is not None
    with pytest.raises(ValueError, match="same length"):
        MultiLayerPyramid({"name": "PE-Test"}, indices=(1, 2))


def test_layernorm2d_matches_layernorm():
    ln = LayerNorm2d(6)
    x = torch.randn(2, 6, 3, 5)
    ref = torch.nn.functional.layer_norm(x.permute(0, 2, 3, 1), (6,), eps=1e-6).permute(0, 3, 1, 2)
    assert torch.allclose(ln(x), ref, atol=1e-6)
