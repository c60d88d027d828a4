"""PEViT: variants, shapes, layer semantics, windowed attention, checkpointing, bad input."""

from __future__ import annotations

import copy

import pytest
import torch

import pe_dense
from pe_dense.backbone.pe_vit import Block, layer_id
from pe_dense.backbone.rope import apply_rope, rope_table
from pe_dense.backbone.variants import (
    VITDET_PRESETS,
    default_layer_decay,
    vitdet_backbone,
    vitdet_preset,
)
from pe_dense.utils.modules import freeze, is_frozen, unfreeze

OFFICIAL_PARAMS_M = {  # docs/pe_reference.md 1.1, measured on the official code
    "PE-Spatial-G14-448": 1851.9, "PE-Spatial-L14-448": 304.0, "PE-Spatial-B16-512": 86.4,
    "PE-Spatial-S16-512": 22.0, "PE-Spatial-T16-512": 5.7, "PE-Core-G14-448": 1882.0,
    "PE-Core-L14-336": 317.2, "PE-Lang-G14-448": 1740.9,
}
OFFICIAL_TENSORS = {"PE-Spatial-G14-448": 704, "PE-Spatial-L14-448": 293,
                    "PE-Spatial-B16-512": 149, "PE-Spatial-T16-512": 149}


def _meta(name: str, **kw) -> pe_dense.PEViT:
    with torch.device("meta"):
        return pe_dense.create_backbone(name, **kw)


@pytest.mark.parametrize("name", pe_dense.list_models())
def test_every_variant_builds(name):
    model = _meta(name)
    cfg = pe_dense.get_variant(name)
    assert model.embed_dim == cfg.width and model.num_layers == cfg.layers
    assert model.num_prefix_tokens == int(cfg.use_cls_token)
    if name in OFFICIAL_PARAMS_M:
        params = sum(p.numel() for p in model.parameters()) / 1e6
        assert round(params, 1) == OFFICIAL_PARAMS_M[name]
    if name in OFFICIAL_TENSORS:
        assert len(model.state_dict()) == OFFICIAL_TENSORS[name]


def test_list_models_and_unknown_name():
    assert pe_dense.list_models("spatial") == [
        "PE-Spatial-G14-448", "PE-Spatial-L14-448", "PE-Spatial-B16-512",
        "PE-Spatial-S16-512", "PE-Spatial-T16-512"]
    with pytest.raises(ValueError, match="Did you mean"):
        pe_dense.create_backbone("Spatial-B16")
    with pytest.raises(ValueError, match="unknown backbone option"):
        pe_dense.create_backbone("PE-Test", windw_size=4)


@pytest.mark.parametrize("size", [(64, 64), (48, 80), (16, 16), (112, 32)])
def test_forward_shapes(size):
    model = pe_dense.create_backbone("PE-Test").eval()
    x = torch.randn(2, 3, *size)
    gh, gw = size[0] // 16, size[1] // 16
    assert model.forward_features(x).shape == (2, gh * gw + 1, 64)
    assert model.forward_features(x, strip_cls=True).shape == (2, gh * gw, 64)
    maps = model.forward_intermediates(x, indices=(0, 2, -1))
    assert [m.shape for m in maps] == [(2, 64, gh, gw)] * 3
    nlc = model.forward_intermediates(x, indices=2, output_fmt="NLC")
    assert [m.shape for m in nlc] == [(2, gh * gw, 64)] * 2


def test_layer_index_semantics():
    model = pe_dense.create_backbone("PE-Test").eval()
    x = torch.randn(1, 3, 48, 64)
    with torch.no_grad():
        taps = model.forward_intermediates(x, indices=[1, 3], output_fmt="NLC")
        assert torch.equal(model.forward_features(x, layer=1, strip_cls=True), taps[0])
        assert torch.equal(model.forward_features(x, layer=-1, strip_cls=True), taps[1])
        assert torch.equal(model.forward_features(x, layer=3), model.forward_features(x))
        full = model.forward_features(x, layer=1)
        assert torch.equal(model.truncate(1).forward_features(x), full)
    assert model.num_layers == 2


def test_core_embedding_and_pools():
    model = pe_dense.create_backbone("PE-Test", pool_type="attn", output_dim=32,
                                     use_ln_post=True).eval()
    assert model(torch.randn(3, 3, 32, 48)).shape == (3, 32)
    avg = pe_dense.create_backbone("PE-Test", pool_type="avg").eval()
    assert avg(torch.randn(2, 3, 32, 32)).shape == (2, 64)


@pytest.mark.parametrize("shape,message", [
    ((1, 1, 64, 64), "expected images of shape"),
    ((1, 3, 8, 64), "smaller than one 16x16 patch"),
    ((1, 3, 70, 64), "nearest valid 64x64"),
    ((3, 64, 64), "expected images of shape"),
])
def test_bad_inputs(shape, message):
    model = pe_dense.create_backbone("PE-Test")
    with pytest.raises(ValueError, match=message):
        model.forward_features(torch.randn(*shape))


def test_layer_out_of_range():
    model = pe_dense.create_backbone("PE-Test")
    x = torch.randn(1, 3, 32, 32)
    for bad in (4, -5):
        with pytest.raises(ValueError, match="out of range"):
            model.forward_features(x, layer=bad)
    with pytest.raises(ValueError, match="out of range"):
        model.forward_intermediates(x, indices=[0, 7])
    with pytest.raises(ValueError, match="last blocks"):
        model.forward_intermediates(x, indices=9)
    with pytest.raises(ValueError, match="output_fmt"):
        model.forward_intermediates(x, output_fmt="NHWC")


@pytest.mark.parametrize("cls_token", [False, True])
def test_window_covering_grid_equals_global(cls_token):
    torch.manual_seed(1)
    glob = pe_dense.create_backbone("PE-Test", use_cls_token=cls_token, ls_init_value=0.1).eval()
    win = pe_dense.create_backbone("PE-Test", use_cls_token=cls_token, ls_init_value=0.1,
                                   window_size=4, global_blocks=(1,)).eval()
    win.load_state_dict(glob.state_dict())
    x = torch.randn(2, 3, 64, 64)  # 4x4 grid == window
    with torch.no_grad():
        if cls_token:  # windowed mode drops the cls token, as ViTDet does
            assert win.num_prefix_tokens == 0
            glob.num_prefix_tokens = 0
        torch.testing.assert_close(win.forward_features(x), glob.forward_features(x),
                                   rtol=1e-5, atol=1e-5)


def _single_block(window: int) -> Block:
    torch.manual_seed(2)
    return Block(32, 2, 64, None, 0.0, window).eval()


def test_windowed_block_equals_per_window_global():
    """Each window (including a padded, partial one) is attended on its own."""
    win, glob = _single_block(2), _single_block(0)
    grid = (3, 5)  # padded to 4x6 -> 2x3 windows, the last row/column partial
    x = torch.randn(1, 15, 32)
    with torch.no_grad():
        out = win(x, rope_table(2, 2, 16, torch.device("cpu")), grid).view(1, 3, 5, 32)
        xs = x.view(1, 3, 5, 32)
        for r0 in (0, 2):
            for c0 in (0, 2, 4):
                part = xs[:, r0:r0 + 2, c0:c0 + 2]
                h, w = part.shape[1:3]
                ref = glob(part.reshape(1, h * w, 32),
                           rope_table(h, w, 16, torch.device("cpu")), (h, w))
                torch.testing.assert_close(out[:, r0:r0 + 2, c0:c0 + 2].reshape(1, h * w, 32), ref,
                                           rtol=1e-5, atol=1e-5)


def test_windowed_high_resolution_and_tiling():
    model = pe_dense.create_backbone("PE-Test", window_size=4, global_blocks=(1, 3),
                                     posemb_mode="tile", rope_mode="interpolate").eval()
    x = torch.randn(1, 3, 160, 96)  # 10x6 grid, not a multiple of the window
    (feat,) = model.forward_intermediates(x, indices=[-1])
    assert feat.shape == (1, 64, 10, 6)
    pos = model._position_embedding((10, 6))[0].view(10, 6, 64)
    base = model.positional_embedding[1:].view(4, 4, 64)
    assert torch.equal(pos[4:8, 0:4], base) and torch.equal(pos[8:10, 4:6], base[0:2, 0:2])


def test_rope_interpolate_equals_extrapolate_at_native_grid():
    a = pe_dense.create_backbone("PE-Test").eval()
    b = pe_dense.create_backbone("PE-Test", rope_mode="interpolate").eval()
    b.load_state_dict(a.state_dict())
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(a.forward_features(x), b.forward_features(x))
        y = torch.randn(1, 3, 128, 64)
        assert not torch.allclose(a.forward_features(y), b.forward_features(y))


def test_rope_table_layout():
    table = rope_table(2, 3, 8, torch.device("cpu"), offset=1.0, cls_token=True)
    assert table.shape == (7, 4) and table.dtype == torch.complex64
    assert torch.equal(table[0], torch.ones(4, dtype=torch.complex64))  # cls: identity
    # token (row 1, col 2) -> index 1 + 1*3 + 2; x = col + 1 = 3 in the first half, y = 2 after;
    # frequencies 10000 ** (-2i / (D/2)) = (1, 0.01) for head dim 8.
    inv = torch.tensor([1.0, 0.01])
    torch.testing.assert_close(table[6].angle(), torch.cat([3 * inv, 2 * inv]))


def test_apply_rope_rotates_adjacent_pairs():
    """(x0, x1) -> (x0 cos - x1 sin, x1 cos + x0 sin), as the official rotate_half form."""
    x = torch.randn(2, 5, 3, 8)  # (B, T, H, D), a strided view below
    table = rope_table(1, 5, 8, torch.device("cpu"))
    out = apply_rope(x.transpose(0, 1).transpose(0, 1), table)
    ang = table.angle()[:, None, :].repeat_interleave(2, -1)  # (T, 1, D)
    rot = torch.stack((-x[..., 1::2], x[..., 0::2]), dim=-1).flatten(-2)
    torch.testing.assert_close(out, x * ang.cos() + rot * ang.sin(), rtol=1e-6, atol=1e-6)


def test_grad_checkpointing_same_outputs_and_grads():
    torch.manual_seed(3)
    ref = pe_dense.create_backbone("PE-Test", drop_path=0.3).train()
    ckpt = pe_dense.create_backbone("PE-Test", drop_path=0.3).train()
    ckpt.load_state_dict(ref.state_dict())
    ckpt.set_grad_checkpointing()
    x = torch.randn(2, 3, 48, 48)
    outs, grads = [], []
    for model in (ref, ckpt):
        torch.manual_seed(7)
        out = model.forward_features(x)
        out.square().mean().backward()
        outs.append(out.detach())
        grads.append([p.grad.clone() for p in model.parameters()])
    torch.testing.assert_close(outs[0], outs[1], rtol=0, atol=0)
    for g0, g1 in zip(*grads, strict=True):
        torch.testing.assert_close(g0, g1, rtol=1e-5, atol=1e-7)


def test_drop_path_only_in_training():
    model = pe_dense.create_backbone("PE-Test", drop_path=0.5)
    x = torch.randn(4, 3, 32, 32)
    model.eval()
    with torch.no_grad():
        assert torch.equal(model.forward_features(x), model.forward_features(x))
    model.train()
    with torch.no_grad():
        assert not torch.equal(model.forward_features(x), model.forward_features(x))


def test_bf16_autocast():
    model = pe_dense.create_backbone("PE-Test").eval()
    x = torch.randn(1, 3, 64, 48)
    with torch.no_grad():
        ref = model.forward_features(x)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            low = model.forward_features(x)
    assert low.dtype == torch.bfloat16
    torch.testing.assert_close(low.float(), ref, rtol=0.1, atol=0.1)
    assert torch.isfinite(low).all()


def test_inference_mode_then_autograd():
    """RoPE tables cached under inference_mode must still work with autograd later."""
    model = pe_dense.create_backbone("PE-Test")
    x = torch.randn(1, 3, 80, 80)
    with torch.inference_mode():
        model.forward_features(x)
    model.forward_features(x).sum().backward()
    assert model.conv1.weight.grad is not None


@pytest.mark.slow
def test_torch_compile_matches_eager():
    """torch.compile (inductor) on windowed and global blocks, inference and training."""
    model = pe_dense.create_backbone("PE-Test", window_size=2, global_blocks=(3,)).eval()
    compiled = torch.compile(model.forward_features)
    x = torch.randn(2, 3, 48, 80)
    with torch.no_grad():
        torch.testing.assert_close(compiled(x), model.forward_features(x), rtol=1e-5, atol=1e-5)
    model.train()
    compiled(x).square().mean().backward()
    grad = model.conv1.weight.grad.clone()
    model.zero_grad()
    model.forward_features(x).square().mean().backward()
    torch.testing.assert_close(grad, model.conv1.weight.grad, rtol=1e-4, atol=1e-6)


def test_take_indices():
    model = pe_dense.create_backbone("PE-Test")
    assert model.take_indices(2) == [2, 3]
    assert model.take_indices(4) == [0, 1, 2, 3]
    assert model.take_indices((0, -1, 2)) == [0, 3, 2]
    assert model.take_indices([-4]) == [0]
    for bad in (0, 5):
        with pytest.raises(ValueError, match="last blocks"):
            model.take_indices(bad)
    for bad in ([4], [-5], [0, 9]):
        with pytest.raises(ValueError, match=r"out of range.*use 0\.\.3 or -4\.\.-1"):
            model.take_indices(bad)
    with pytest.raises(ValueError, match="empty"):
        model.take_indices([])


def test_layer_id_rule():
    for name in ("conv1.weight", "positional_embedding", "class_embedding", "ln_pre.bias"):
        assert layer_id(name, 4) == 0
    assert layer_id("transformer.resblocks.0.attn.in_proj_weight", 4) == 1
    assert layer_id("transformer.resblocks.3.mlp.c_fc.weight", 4) == 4
    assert layer_id("ln_post.weight", 4) == layer_id("attn_pool.probe", 4) == 5


def test_freeze_keeps_eval_under_a_training_parent():
    net = pe_dense.create_backbone("PE-Test", drop_path=0.5)
    parent = torch.nn.Sequential(net, torch.nn.Dropout(0.1))
    assert freeze(net) is net and is_frozen(net)
    parent.train()
    assert not net.training and parent[1].training
    assert not any(p.requires_grad for p in net.parameters())
    assert not copy.deepcopy(parent).train()[0].training  # survives copies
    x = torch.randn(1, 3, 32, 32)
    assert torch.equal(net.forward_features(x), net.forward_features(x))  # no drop path
    unfreeze(net)
    parent.train()
    assert net.training and all(p.requires_grad for p in net.parameters())
    grads_only = freeze(pe_dense.create_backbone("PE-Test"), eval_mode=False)
    assert grads_only.train().training and is_frozen(grads_only)


@pytest.mark.parametrize("name", list(VITDET_PRESETS))
def test_vitdet_presets_build(name):
    kwargs = vitdet_backbone(name, drop_path=0.0)
    assert kwargs["name"] == name and kwargs["drop_path"] == 0.0
    assert "layer_decay" not in kwargs
    with torch.device("meta"):
        model = pe_dense.create_backbone(**kwargs)
    preset = vitdet_preset(name)
    assert model.global_blocks == preset.global_blocks and model.window_size == 32
    assert model.global_blocks[-1] == model.num_layers - 1 and model.patch_size == 16
    assert default_layer_decay(model.num_layers) == preset.layer_decay
    with pytest.raises(ValueError, match="no ViTDet detection preset"):
        vitdet_backbone("PE-Test")
