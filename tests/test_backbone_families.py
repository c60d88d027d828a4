"""Other encoder families behind the backbone contract: tiny random-weight DINOv2 (registers,
patch 16 here), DINOv3 (RoPE) and RADIO (NaFlex) models from timm run every task: a detection,
segmentation and depth training step, predict, tracking, a distillation step (as student and as
teacher), ONNX export with parity, and FSDP wrapping."""

from __future__ import annotations

import numpy as np
import pytest
import torch

pytest.importorskip("timm")

from pe_dense.backbone.contract import Backbone  # noqa: E402
from pe_dense.backbone.factory import create_backbone  # noqa: E402

TINY = dict(depth=2, embed_dim=32, num_heads=2)
FAMILIES = {
    "dinov2": dict(name="timm/vit_small_patch14_reg4_dinov2", img_size=32, patch_size=16, **TINY),
    "dinov3": dict(name="timm/vit_small_patch16_dinov3", img_size=32, **TINY),
    "radio": dict(name="timm/naflexvit_base_patch16_radio_v3", **TINY),
}
RNG = np.random.default_rng(0)


def _images(n: int = 2, h: int = 32, w: int = 48) -> torch.Tensor:
    return torch.from_numpy(RNG.integers(0, 255, (n, 3, h, w), dtype=np.uint8))


@pytest.fixture(params=sorted(FAMILIES))
def family(request) -> dict:
    return dict(FAMILIES[request.param])


def test_contract_attributes_and_own_normalisation(family):
    backbone = create_backbone(**family)
    assert isinstance(backbone, Backbone) and backbone.name == family["name"]
    assert backbone.patch_size == 16 and backbone.embed_dim == 32 and backbone.num_layers == 2
    assert backbone.num_prefix_tokens >= 1 and not backbone.supports_windowed
    assert backbone.input_std != (0.5, 0.5, 0.5)  # ImageNet / CLIP statistics, not PE's
    images = _images()
    x = backbone.normalize(images)
    mean = torch.tensor(backbone.input_mean)[:, None, None]
    std = torch.tensor(backbone.input_std)[:, None, None]
    assert torch.allclose(x[0], (images[0].float() / 255 - mean) / std, atol=1e-5)
    maps = backbone.forward_intermediates(x, (-1, 0))
    tokens = backbone.forward_features(x)
    assert [tuple(m.shape) for m in maps] == [(2, 32, 2, 3)] * 2
    assert tokens.shape == (2, backbone.num_prefix_tokens + 6, 32)
    assert torch.allclose(tokens[:, backbone.num_prefix_tokens:].transpose(1, 2).reshape(
        2, 32, 2, 3), maps[0], atol=1e-5)
    assert backbone.layer_id("model.blocks.1.mlp.fc1.weight") == 2
    assert len(backbone.blocks()) == 2


def _step(model: torch.nn.Module, losses: dict) -> None:
    total = sum(v for k, v in losses.items() if "loss" in k)
    assert torch.isfinite(total)
    total.backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad and p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)


def test_detection_segmentation_depth_train_step_and_predict(family):
    from pe_dense.tasks.depth.model import DepthEstimator
    from pe_dense.tasks.detection.model import MaskRCNN
    from pe_dense.tasks.segmentation.model import Segmentor

    images = _images()
    seg = Segmentor(backbone=dict(family), head={"type": "LinearHead"}, num_classes=3)
    _step(seg, seg.loss(images, [{"label": torch.randint(0, 3, (32, 48))} for _ in range(2)]))
    depth = DepthEstimator(backbone=dict(family), head={"type": "DPTHead"}, max_depth=10.0)
    _step(depth, depth.loss(images, [{"depth": torch.rand(1, 32, 48) * 5 + 1} for _ in range(2)]))
    det = MaskRCNN(backbone=dict(family), num_classes=2, anchor_sizes=((8,), (16,), (32,),
                   (64,), (128,)), pyramid={"type": "SimpleFeaturePyramid", "out_channels": 16},
                   rpn={"pre_nms_top_n": {"training": 50, "testing": 50},
                        "post_nms_top_n": {"training": 20, "testing": 20}},
                   roi={"batch_size_per_image": 16, "detections_per_img": 5},
                   box_head={"conv_dims": (8,), "fc_dims": (16,)}, mask_head={"conv_dims": (8,)})
    masks = torch.zeros(1, 32, 48, dtype=torch.bool)
    masks[0, 4:20, 6:30] = True
    sample = {"boxes": torch.tensor([[6.0, 4.0, 30.0, 20.0]]), "labels": torch.tensor([1]),
              "masks": masks, "img_size": (32, 48)}
    from pe_dense.data.collate import pad_images

    _step(det, det.loss(pad_images([images[0]], size_divisor=64), [sample]))
    arrays = [images[0].permute(1, 2, 0).numpy()]
    assert det.eval().predict_images(arrays)[0]["masks"].shape[1:] == (32, 48)
    assert seg.eval().predict_images(arrays)[0].shape == (32, 48)
    assert depth.eval().predict_images(arrays)[0].shape == (32, 48)


def test_tracking_and_distillation_as_student_and_teacher(family):
    from pe_dense.distill.model import DistillModel
    from pe_dense.tracking import Tracker

    backbone = create_backbone(**family).eval()
    frame = _images(1, 32, 48)[0].permute(1, 2, 0).numpy().copy()
    first = np.zeros((32, 48), np.uint8)
    first[4:20, 6:30] = 1
    tracker = Tracker(backbone, layer=-1, short_side=32)
    tracker.reset(frame, first)
    assert tracker.update(frame).shape == (32, 48)

    spec = {k: v for k, v in family.items() if k != "name"}
    as_student = DistillModel(student=dict(model=family["name"], **spec), crop_size=32,
                              teachers=[dict(name="pe", kind="layer", model="PE-Test", layer=2,
                                             losses=dict(cosine=1.0, locality=1.0))])
    _step(as_student, as_student.loss(_images(2, 40, 40)))
    as_teacher = DistillModel(student=dict(model="PE-Test"), crop_size=32,
                              teachers=[dict(name="t", kind="layer", model=family["name"],
                                             layer=-1, overrides=spec,
                                             losses=dict(cosine=1.0))])
    _step(as_teacher, as_teacher.loss(_images(2, 40, 40)))


def test_export_parity_and_exported_backbone(family, tmp_path):
    pytest.importorskip("onnxruntime")
    from pe_dense.export.api import export_model
    from pe_dense.runtime import SessionBackbone, open_session

    backbone = create_backbone(**family).eval()
    result = export_model(backbone, tmp_path / "b.onnx", resolution=(32, 48), layers=[0, 1])
    assert all(check.rel < 1e-4 for check in result.checks)
    assert tuple(result.spec.input_std) == tuple(backbone.input_std)
    exported = SessionBackbone(open_session(tmp_path / "b.onnx"))
    images = _images(1)
    assert exported.input_std == backbone.input_std
    ours = backbone.forward_intermediates(backbone.normalize(images), [1])[0]
    theirs = exported.forward_intermediates(exported.normalize(images), [1])[0]
    assert torch.allclose(ours, theirs, atol=1e-4)


def test_fsdp_wraps_one_unit_per_block(family, tmp_path):
    import torch.distributed as dist

    from pe_dense.engine.fsdp import block_types
    from pe_dense.utils.sharding import shard_model

    backbone = create_backbone(**family)
    if dist.is_initialized():
        pytest.skip("a process group is already running")
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'pg'}", rank=0,
                            world_size=1)
    class LastMap(torch.nn.Module):  # FSDP hooks forward: run the backbone through it
        def __init__(self) -> None:
            super().__init__()
            self.backbone = backbone

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.backbone.forward_intermediates(x, [-1])[0]

    try:
        model = LastMap()
        types = block_types(model)
        assert types == (type(backbone.blocks()[0]),)
        sharded = shard_model(model, types, device_type="cpu")
        units = [m for m in sharded.modules() if isinstance(m, types)]
        assert len(units) == 2 and all(hasattr(m, "reshard") for m in units)  # FSDP units
        sharded(backbone.normalize(_images(1))).float().square().mean().backward()
        assert all(p.grad is not None for unit in units for p in unit.parameters())
    finally:
        dist.destroy_process_group()


def test_weights_round_trip_and_bad_requests_say_what_to_do(tmp_path):
    from pe_dense.backbone.weights import WeightLoadError

    spec = dict(FAMILIES["dinov3"])
    trained = create_backbone(**spec)
    path = tmp_path / "dinov3.pt"
    torch.save(trained.export_state_dict(), path)
    loaded = create_backbone(**spec, weights=str(path)).eval()
    x = loaded.normalize(_images(1))
    assert torch.equal(loaded.forward_features(x), trained.eval().forward_features(x))
    with pytest.raises(WeightLoadError, match="checkpoint does not fit"):
        create_backbone(**{**spec, "embed_dim": 48}, weights=str(path))
    with pytest.raises(ValueError, match="did you mean timm/vit_small_patch16_dinov3"):
        create_backbone("timm/vit_small_patch14_dinov3")
    with pytest.raises(ValueError, match="cannot run ViTDet windowed attention"):
        create_backbone(**spec, window_size=8)
    with pytest.raises(ValueError, match="has no blocks: the adapter needs"):
        create_backbone("timm/resnet18")
