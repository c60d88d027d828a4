"""mmseg integration: the backbone (always), config parsing (with mmengine), registration (with
``mmseg.registry``) and a segmentor step (only with a full mmseg + compiled mmcv install)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

from pe_dense import create_backbone
from pe_dense.backbone.weights import WeightLoadError
from pe_dense.integrations import mmseg as mmi

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = sorted((ROOT / "configs" / "mmseg").glob("*.py"))


def test_missing_mmseg_gives_install_advice(monkeypatch):
    monkeypatch.setitem(sys.modules, "mmseg", None)
    monkeypatch.setitem(sys.modules, "mmseg.registry", None)
    with pytest.raises(ImportError, match=r"pe-dense\[mmseg\]"):
        mmi.register_mmseg_modules()


def test_multi_level_maps_match_forward_intermediates():
    net = mmi.PEViTBackbone("PE-Test", out_indices=(0, 1, 2, -1), rescales=(4, 2, 1, 0.5)).eval()
    x = torch.randn(2, 3, 64, 96)
    with torch.no_grad():
        maps = net(x)
        ref = net.forward_intermediates(x, indices=[0, 1, 2, 3])
    assert [tuple(m.shape) for m in maps] == [(2, 64, 16, 24), (2, 64, 8, 12), (2, 64, 4, 6),
                                              (2, 64, 2, 3)]
    assert torch.equal(maps[2], ref[2])
    assert torch.allclose(maps[3], torch.nn.functional.avg_pool2d(ref[3], 2), atol=1e-6)


def test_input_is_padded_to_the_patch_size():
    net = mmi.PEViTBackbone("PE-Test").eval()
    with torch.no_grad():
        (out,) = net(torch.randn(1, 3, 60, 70))
    assert out.shape == (1, 64, 4, 5)


def test_frozen_backbone_for_linear_probing():
    net = mmi.PEViTBackbone("PE-Test", frozen=True, drop_path=0.2)
    net.train()
    assert not net.training and not any(p.requires_grad for p in net.parameters())
    (out,) = net(torch.randn(1, 3, 64, 64))
    assert not out.requires_grad
    trainable = mmi.PEViTBackbone("PE-Test").train()
    (out,) = trainable(torch.randn(1, 3, 64, 64))
    out.sum().backward()
    assert trainable.conv1.weight.grad is not None


def test_weights_and_option_errors():
    src = create_backbone("PE-Test")
    net = mmi.PEViTBackbone("PE-Test", out_indices=(-1,), weights=src.state_dict())
    assert torch.equal(net.conv1.weight, src.conv1.weight)
    with pytest.raises(WeightLoadError):
        mmi.PEViTBackbone("PE-Test", weights=create_backbone("PE-Spatial-T16-512").state_dict())
    with pytest.raises(ValueError, match="one factor per out_indices"):
        mmi.PEViTBackbone("PE-Test", out_indices=(1, 2), rescales=(1,))
    with pytest.raises(ValueError, match="unknown PEViTBackbone option"):
        mmi.PEViTBackbone("PE-Test", out_index=3)
    with pytest.raises(ValueError, match="out of range"):
        mmi.PEViTBackbone("PE-Test", out_indices=(4,))


@pytest.mark.parametrize("path", CONFIGS, ids=[p.stem for p in CONFIGS])
def test_configs_parse_and_fit_the_backbone(path):
    config = pytest.importorskip("mmengine.config", reason="mmengine is not installed")
    cfg = config.Config.fromfile(str(path))
    assert "pe_dense.integrations.mmseg" in cfg.custom_imports.imports
    bb = dict(cfg.model.backbone)
    assert bb.pop("type") == "PEViTBackbone"
    with torch.device("meta"):
        net = mmi.PEViTBackbone(**bb)
    n_maps = len(net.out_indices)
    head = cfg.model.decode_head
    channels = [net.embed_dim] * n_maps
    if "neck" in cfg.model:
        assert cfg.model.neck.in_channels == channels
        channels = [cfg.model.neck.out_channels] * len(cfg.model.neck.scales)
    assert [channels[i] for i in head.in_index] == list(head.in_channels)
    crop = cfg.model.data_preprocessor.size
    assert crop[0] % net.patch_size == 0 and crop[1] % net.patch_size == 0
    if head.type == "PELinearHead":
        assert bb.get("frozen") and head.channels == sum(head.in_channels)


@pytest.fixture
def registry(monkeypatch):
    reg = pytest.importorskip("mmseg.registry", reason="mmsegmentation is not installed")
    # Without mmcv's compiled ops mmseg.models cannot be imported, so keep the registry from
    # importing its location; the entries registered here are what is being tested.
    monkeypatch.setattr(reg.MODELS, "_imported", True)
    return reg.MODELS


def test_registered_in_mmseg_models(registry):
    assert "PEViTBackbone" in mmi.register_mmseg_modules()
    assert registry.get("PEViTBackbone") is mmi.PEViTBackbone
    net = registry.build(dict(type="PEViTBackbone", variant="PE-Test", out_indices=(1, 3),
                              rescales=(2, 1)))
    assert isinstance(net, mmi.PEViTBackbone) and len(net(torch.randn(1, 3, 64, 64))) == 2


def test_tiny_segmentor_trains_one_step():
    pytest.importorskip("mmseg.models", reason="needs mmseg with mmcv's compiled ops")
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    from mmengine.structures import PixelData
    from mmseg.registry import MODELS
    from mmseg.structures import SegDataSample

    init_default_scope("mmseg")
    cfg = Config.fromfile(str(ROOT / "configs" / "mmseg" / "upernet_pe-test_camvid-tiny.py"))
    cfg.model.decode_head.norm_cfg = cfg.model.auxiliary_head.norm_cfg = dict(type="BN")
    model = MODELS.build(cfg.model)
    samples = []
    for _ in range(2):  # BatchNorm after the 1x1 pooling branch needs 2 images
        sample = SegDataSample(metainfo=dict(img_shape=(128, 128), pad_shape=(128, 128)))
        sample.gt_sem_seg = PixelData(data=torch.randint(0, 11, (1, 128, 128)))
        samples.append(sample)
    images = [torch.randint(0, 255, (3, 128, 128), dtype=torch.uint8) for _ in samples]
    data = model.data_preprocessor(dict(inputs=images, data_samples=samples), training=True)
    losses = model(**data, mode="loss")
    total = sum(v for k, v in losses.items() if "loss" in k)
    assert torch.isfinite(total)
    total.backward()
