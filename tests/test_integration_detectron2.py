"""detectron2 integration: detector checkpoint handling (pe_dense.backbone) and lr decay
(always), backbone/configs/training (only where detectron2 is installed; it is built from
source, see the README)."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

import pe_dense.integrations.detectron2 as d2i
from pe_dense import PEViT, create_backbone
from pe_dense.backbone.layouts import adapt_detection_state_dict
from pe_dense.backbone.variants import VITDET_PRESETS
from pe_dense.backbone.weights import (
    WeightLoadError,
    load_detector_checkpoint,
    official_to_detectron2,
    official_to_timm,
    save_checkpoint,
)

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "configs" / "detectron2"
WINDOWED = dict(image_size=128, window_size=4, global_blocks=(1, 3), posemb_mode="tile",
                rope_mode="interpolate", pretrain_image_size=64)


class FakeDetector(nn.Module):
    """The attribute layout of a detectron2 ViTDet detector: backbone.net + other modules."""

    def __init__(self, num_classes: int = 3) -> None:
        super().__init__()
        self.backbone = nn.Module()
        self.backbone.net = create_backbone("PE-Test", **WINDOWED)
        self.backbone.simfp_2 = nn.Conv2d(64, 8, 1)
        self.roi_heads = nn.Linear(8, num_classes)


def _official_det_checkpoint(net: nn.Module) -> dict:
    """A detector checkpoint laid out like the official PE detection files."""
    sd = {f"backbone.net.{k}": v.clone() for k, v in net.state_dict().items()}
    sd["backbone.net.positional_embedding"] = sd["backbone.net.positional_embedding"][None]
    sd["backbone.net.rope_win.freqs_cos"] = torch.randn(16, 16)
    sd["backbone.net.transformer.resblocks.0.attn.rope.freqs_sin"] = torch.randn(16, 16)
    return sd


def _same(a: nn.Module, b: nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


# ----------------------------------------------------------------------------- without detectron2

def test_missing_detectron2_gives_install_advice(monkeypatch):
    monkeypatch.setitem(sys.modules, "detectron2", None)
    d2i._backbone_class.cache_clear()
    try:
        with pytest.raises(ImportError, match=r"pe-dense\[d2\]"):
            d2i.PEViTBackbone  # noqa: B018
    finally:
        d2i._backbone_class.cache_clear()
    with pytest.raises(AttributeError):
        d2i.NoSuchThing  # noqa: B018


def test_lr_decay_rate_layers():
    rate = d2i.lr_decay_rate
    for name in ("backbone.net.conv1.weight", "backbone.net.positional_embedding",
                 "backbone.net.class_embedding", "backbone.net.ln_pre.bias"):
        assert rate(name, 0.5, num_layers=4) == pytest.approx(0.5**5)
    assert rate("backbone.net.transformer.resblocks.0.attn.in_proj_weight", 0.5, 4) == 0.5**4
    assert rate("backbone.net.transformer.resblocks.3.mlp.c_fc.weight", 0.5, 4) == 0.5
    assert rate("backbone.simfp_2.0.weight", 0.5, 4) == 1.0
    assert rate("roi_heads.box_head.fc1.weight", 0.5, 4) == 1.0


@pytest.mark.parametrize("variant", list(VITDET_PRESETS))
def test_vitdet_net_and_lr_factor_follow_the_presets(variant):
    net = d2i.vitdet_net(variant, drop_path=0.0)
    preset = VITDET_PRESETS[variant]
    assert net["variant"] == variant and net["square_pad"] == 1024 and net["drop_path"] == 0.0
    assert net["global_blocks"] == preset.global_blocks and net["window_size"] == 32
    assert net["grad_checkpointing"] == preset.grad_checkpointing
    factor = d2i.vitdet_lr_factor(variant)
    depth = factor.keywords["num_layers"]
    assert depth == preset.global_blocks[-1] + 1
    assert factor("backbone.net.conv1.weight") == pytest.approx(preset.layer_decay ** (depth + 1))


def test_adapt_official_detection_keys_loads_strictly():
    net = create_backbone("PE-Test", **WINDOWED)
    sd = _official_det_checkpoint(net)
    adapt_detection_state_dict(sd, "backbone.net.", patch_size=16)
    assert not any("rope" in k for k in sd)
    fresh = create_backbone("PE-Test", **WINDOWED)
    fresh.load_state_dict({k[len("backbone.net."):]: v for k, v in sd.items()}, strict=True)
    assert _same(fresh, net)


def test_adapt_resamples_patch_kernel():
    sd = {"conv1.weight": torch.randn(64, 3, 14, 14)}
    adapt_detection_state_dict(sd, "", patch_size=16)
    assert sd["conv1.weight"].shape == (64, 3, 16, 16)


@pytest.mark.parametrize("layout", ["official", "timm", "d2_converted", "official_14"])
def test_load_detector_checkpoint_backbone_formats(tmp_path, layout):
    src = create_backbone("PE-Test", **WINDOWED)
    sd = src.state_dict()
    if layout == "timm":
        obj = official_to_timm(sd)
    elif layout == "d2_converted":
        obj = official_to_detectron2(sd)
    elif layout == "official_14":
        obj = {**sd, "conv1.weight": torch.randn(64, 3, 14, 14)}
    else:
        obj = sd
    path = tmp_path / "ckpt.pth"
    save_checkpoint(obj, path)
    model = FakeDetector()
    heads_before = model.roi_heads.weight.clone()
    out = load_detector_checkpoint(model, path)
    assert out["backbone"].ok
    net = model.backbone.net
    if layout == "official_14":
        assert net.conv1.weight.shape == (64, 3, 16, 16)
        assert torch.equal(net.positional_embedding, src.positional_embedding)
    else:
        assert _same(net, src)
    assert torch.equal(model.roi_heads.weight, heads_before)


def test_load_detector_checkpoint_detector(tmp_path):
    trained = FakeDetector()
    sd = {**_official_det_checkpoint(trained.backbone.net),
          "backbone.simfp_2.weight": trained.backbone.simfp_2.weight,
          "backbone.simfp_2.bias": trained.backbone.simfp_2.bias,
          "roi_heads.weight": torch.randn(5, 8), "roi_heads.bias": torch.randn(5)}
    save_checkpoint({"model": sd, "iteration": 7}, tmp_path / "model_final.pth")
    model = FakeDetector(num_classes=3)
    out = load_detector_checkpoint(model, tmp_path / "model_final.pth")
    assert _same(model.backbone.net, trained.backbone.net)
    assert torch.equal(model.backbone.simfp_2.weight, trained.backbone.simfp_2.weight)
    assert sorted(out["skipped"]) == ["roi_heads.bias", "roi_heads.weight"]  # 5 vs 3 classes


def test_official_detector_without_class_embedding_loads():
    # The official detection backbone has no class_embedding; ours keeps its (unused) value.
    trained = FakeDetector()
    sd = _official_det_checkpoint(trained.backbone.net)
    del sd["backbone.net.class_embedding"]
    model = FakeDetector()
    cls_before = model.backbone.net.class_embedding.clone()
    out = load_detector_checkpoint(model, {"model": sd})
    assert out["backbone"].ok
    assert torch.equal(model.backbone.net.class_embedding, cls_before)
    assert torch.equal(model.backbone.net.conv1.weight, trained.backbone.net.conv1.weight)


def test_load_detector_checkpoint_wrong_variant_is_an_error():
    other = create_backbone("PE-Spatial-T16-512")
    with pytest.raises(WeightLoadError, match="does not fit"):
        load_detector_checkpoint(FakeDetector(), other.state_dict())


# ----------------------------------------------------------------------------- with detectron2

@pytest.fixture
def d2():
    pytest.importorskip("detectron2.modeling", reason="detectron2 is not installed")
    return d2i.PEViTBackbone


def test_backbone_is_our_pevit(d2):
    from detectron2.modeling import Backbone

    net = d2("PE-Test", square_pad=128, **WINDOWED).eval()
    assert isinstance(net, Backbone) and isinstance(net, PEViT)
    shape = net.output_shape()["last_feat"]
    assert (shape.channels, shape.stride) == (64, 16)
    assert net.padding_constraints == {"size_divisibility": 16, "square_size": 128}
    x = torch.randn(2, 3, 128, 96)
    with torch.no_grad():
        out = net(x)["last_feat"]
        ref = net.forward_intermediates(x, indices=[-1])[0]
        padded = net(x[..., :90])["last_feat"]  # zero-padded up to 96
    assert out.shape == (2, 64, 8, 6) and torch.equal(out, ref)
    assert padded.shape == (2, 64, 8, 6)
    assert not net.class_embedding.requires_grad  # unused in windowed mode


@pytest.mark.parametrize("layout", ["official_detection", "official_backbone"])
def test_pe_checkpointer_reads_pe_layouts(d2, tmp_path, layout):
    src = create_backbone("PE-Test", **WINDOWED)
    path = tmp_path / "ckpt.pth"
    obj = src.state_dict() if layout == "official_backbone" else _official_det_checkpoint(src)
    save_checkpoint({"model": obj}, path)
    model = nn.Module()
    model.backbone = nn.Module()
    model.backbone.net = d2("PE-Test", **WINDOWED)
    d2i.PEDetectionCheckpointer(model).load(str(path))
    assert _same(model.backbone.net, src)


def test_load_state_dict_adapts_official_detection_keys(d2):
    src = create_backbone("PE-Test", **WINDOWED)
    net = d2("PE-Test", **WINDOWED)
    sd = {k[len("backbone.net."):]: v for k, v in _official_det_checkpoint(src).items()}
    net.load_state_dict(sd, strict=True)
    assert _same(net, src)


def _load_config(name: str):
    from detectron2.config import LazyConfig

    return LazyConfig.load(str(CONFIGS / name))


@pytest.mark.parametrize("size,variant,depth", [("b", "PE-Spatial-B16-512", 12),
                                                ("l", "PE-Spatial-L14-448", 24),
                                                ("g", "PE-Spatial-G14-448", 50)])
def test_size_configs_parse_and_build(d2, size, variant, depth):
    from detectron2.config import instantiate

    cfg = _load_config(f"mask_rcnn_pe_spatial_{size}_coco.py")
    net_cfg = cfg.model.backbone.net
    assert net_cfg.variant == variant and net_cfg.patch_size == 16
    assert cfg.optimizer.params.lr_factor_func.keywords["num_layers"] == depth
    assert cfg.optimizer.params.lr_factor_func.keywords["lr_decay_rate"] == {
        12: 0.7, 24: 0.8, 50: 0.9}[depth]
    assert net_cfg.grad_checkpointing == (size in ("l", "g")) and net_cfg.square_pad == 1024
    assert net_cfg.drop_path == {12: 0.1, 24: 0.4, 50: 0.5}[depth]
    assert cfg.train.max_iter == 66375
    with torch.device("meta"):
        model = instantiate(cfg.model)
    strides = {k: s.stride for k, s in model.backbone.output_shape().items()}
    assert strides == {"p2": 4, "p3": 8, "p4": 16, "p5": 32, "p6": 64}
    assert model.backbone.net.num_layers == depth
    if size == "g":
        assert model.backbone.net.global_blocks == (12, 24, 36, 49)
        assert cfg.optimizer.lr == 5e-5 and net_cfg.drop_path == 0.5


def test_tiny_config_trains_one_step(d2):
    from detectron2.config import instantiate
    from detectron2.structures import BitMasks, Boxes, Instances
    from detectron2.utils.events import EventStorage

    cfg = _load_config("mask_rcnn_pe_test_tiny.py")
    model = instantiate(cfg.model).train()
    inst = Instances((256, 256))
    inst.gt_boxes = Boxes(torch.tensor([[20.0, 30.0, 120.0, 160.0]]))
    inst.gt_classes = torch.tensor([3])
    mask = torch.zeros(1, 256, 256, dtype=torch.bool)
    mask[:, 30:160, 20:120] = True
    inst.gt_masks = BitMasks(mask)
    batch = [{"image": torch.randint(0, 255, (3, 256, 224)).float(), "instances": inst}]
    with EventStorage(0):
        losses = model(batch)
    total = sum(losses.values())
    assert torch.isfinite(total)
    total.backward()
    assert model.backbone.net.conv1.weight.grad is not None


@pytest.mark.parametrize("cls_token,ls", [(False, 0.1), (True, None)])
def test_matches_official_detection_backbone(d2, cls_token, ls):
    """Same outputs as the official PEv1_det (perception_models, never copied here) for the
    same weights. Set PE_DENSE_OFFICIAL_REPO to a perception_models checkout to run it."""
    repo = os.environ.get("PE_DENSE_OFFICIAL_REPO")
    path = Path(repo or ".") / "apps/detection/detectron2_pe/modeling/backbone/pev1_det.py"
    if not repo or not path.is_file():
        pytest.skip("set PE_DENSE_OFFICIAL_REPO to a perception_models checkout")
    pytest.importorskip("einops")
    spec = importlib.util.spec_from_file_location("official_pev1_det", path)
    official = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(official)
    ref = official.PEv1_det(img_size=128, patch_size=16, embed_dim=64, depth=4, num_heads=4,
                            mlp_ratio=2.0, init_values=ls, pt_hw_seq_len=4, window_size=4,
                            window_block_indexes=(0, 2), pretrain_img_size=64,
                            pretrain_use_cls_token=cls_token, tile_posemb=True).eval()
    with torch.no_grad():
        for name, p in ref.named_parameters():  # its in_proj_* start as torch.empty
            base = 1.0 if name.endswith(("ln_1.weight", "ln_2.weight", "ln_pre.weight")) else 0.0
            p.copy_(base + 0.05 * torch.randn_like(p))
    ours = d2("PE-Test", use_cls_token=cls_token, ls_init_value=ls, **WINDOWED).eval()
    ours.load_state_dict(ref.state_dict(), strict=True)  # 3-D posemb, RoPE buffers, no cls
    x = torch.randn(2, 3, 128, 128)
    with torch.no_grad():
        torch.testing.assert_close(ours(x)["last_feat"], ref(x)["last_feat"], atol=1e-5,
                                   rtol=1e-5)


@pytest.mark.slow
def test_train_tool_on_coco_tiny(d2, shared_data, tmp_path):
    out = tmp_path / "run"
    cmd = [sys.executable, str(ROOT / "tools" / "train_detectron2.py"), "--config-file",
           str(CONFIGS / "mask_rcnn_pe_test_tiny.py"), "--register-coco",
           f"coco_tiny={shared_data / 'coco_tiny'}"]
    res = subprocess.run(cmd + [f"train.output_dir={out}"], capture_output=True, text=True,
                         timeout=1200)
    assert res.returncode == 0, res.stderr[-3000:]
    assert (out / "model_final.pth").is_file()
    assert "copypaste: Task: segm" in res.stdout + res.stderr
    res = subprocess.run(cmd + ["--eval-only", f"train.output_dir={tmp_path / 'eval'}",
                                f"train.init_checkpoint={out / 'model_final.pth'}"],
                         capture_output=True, text=True, timeout=1200)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "copypaste: Task: segm" in res.stdout + res.stderr


def test_shapes_configs_describe_the_same_detector(d2, tmp_path):
    """configs/det/... and configs/detectron2/mask_rcnn_pe_spatial_t_shapes_cpu.py (the
    side-by-side of docs/benchmarks.md): same backbone output from the same weights file, same
    pyramid and RPN sizes, RoI heads equal but for torchvision's unused background outputs."""
    from detectron2.config import LazyConfig, instantiate

    from pe_dense.backbone.factory import create_backbone
    from pe_dense.backbone.weights import load_detector_checkpoint
    from pe_dense.engine.runner import load_config
    from pe_dense.tasks.detection.model import MaskRCNN

    init = tmp_path / "init.pt"
    torch.manual_seed(0)
    torch.save(create_backbone("PE-Spatial-T16-512", image_size=256).state_dict(), init)
    cfg = load_config(str(ROOT / "configs/det/mask_rcnn_pe_spatial_t_shapes_cpu.py"))
    kwargs = {k: v for k, v in cfg.model.to_dict().items() if k != "type"}
    ours = MaskRCNN(**{**kwargs, "backbone": {**kwargs["backbone"], "weights": str(init)}})
    d2 = instantiate(LazyConfig.load(str(ROOT / "configs/detectron2/"
                                          "mask_rcnn_pe_spatial_t_shapes_cpu.py")).model)
    load_detector_checkpoint(d2, str(init))
    x = torch.randn(1, 3, 256, 256)
    with torch.no_grad():
        torch.testing.assert_close(ours.backbone.forward_intermediates(x, indices=[-1])[0],
                                   d2.backbone.net(x)["last_feat"])
        assert {k: v.shape for k, v in ours.encode(x).items()} == \
            {k: v.shape for k, v in d2.backbone(x).items()}

    def count(m):
        return sum(p.numel() for p in m.parameters())

    def drop_rates(vit):   # train-only: the forward comparison above cannot see it
        return [block.drop_path for block in vit.transformer.resblocks]

    assert drop_rates(ours.backbone) == drop_rates(d2.backbone.net)
    assert count(ours.pyramid) == count(d2.backbone)
    assert count(ours.rpn) == count(d2.proposal_generator)
    background = (512 * 4 + 4) + (64 + 1)  # box deltas and mask logits of class 0
    assert count(ours.roi_heads) == count(d2.roi_heads) + background


def _copy_detector_weights(ours: nn.Module, d2_model: nn.Module, num_classes: int) -> None:
    """Give detectron2's ViTDet Mask R-CNN the weights of our MaskRCNN (same structure): the
    ViT, pyramid, RPN and RoI heads in parameter order; torchvision's predictors put background
    first (class 0, also with box deltas and a mask), detectron2's box classifier puts it last
    and its box and mask predictors have none."""
    def by_order(src, dst):
        for (ns, s), (nd, d) in zip(src, dst, strict=True):
            assert s.shape == d.shape, (ns, nd)
            d.data.copy_(s.data)

    def params(module, skip=""):
        return [(n, p) for n, p in module.named_parameters() if not (skip and n.startswith(skip))]

    heads = d2_model.roi_heads
    mask_convs = [c for n, c in heads.mask_head.named_children() if n.startswith("mask_fcn")]
    by_order(params(ours.backbone), params(d2_model.backbone.net))
    by_order(params(ours.pyramid, skip="backbone."), params(d2_model.backbone, skip="net."))
    by_order(params(ours.rpn.head), params(d2_model.proposal_generator.rpn_head))
    by_order(params(ours.roi_heads.box_head), params(heads.box_head))
    by_order(params(ours.roi_heads.mask_head), params(nn.ModuleList(mask_convs)))
    box, mask = ours.roi_heads.box_predictor, ours.roi_heads.mask_predictor
    order = [*range(1, num_classes + 1), 0]
    with torch.no_grad():
        heads.box_predictor.cls_score.weight.copy_(box.cls_score.weight[order])
        heads.box_predictor.cls_score.bias.copy_(box.cls_score.bias[order])
        heads.box_predictor.bbox_pred.weight.copy_(box.bbox_pred.weight[4:])
        heads.box_predictor.bbox_pred.bias.copy_(box.bbox_pred.bias[4:])
        heads.mask_head.deconv.weight.copy_(mask.conv5_mask.weight)
        heads.mask_head.deconv.bias.copy_(mask.conv5_mask.bias)
        heads.mask_head.predictor.weight.copy_(mask.mask_fcn_logits.weight[1:])
        heads.mask_head.predictor.bias.copy_(mask.mask_fcn_logits.bias[1:])


def _shapes_batch(num_images: int = 2, size: int = 256) -> list[dict]:
    """pe_dense samples (PackDetInputs output) of noise images with 1-3 painted boxes/discs."""
    from pe_dense.data.det_transforms import PackDetInputs, _boxes_from_masks

    gen = torch.Generator().manual_seed(0)
    items = []
    for _ in range(num_images):
        image = torch.randint(0, 256, (size, size, 3), generator=gen, dtype=torch.uint8)
        n = int(torch.randint(1, 4, (1,), generator=gen))
        masks = torch.zeros((n, size, size), dtype=torch.uint8)
        yy, xx = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
        for k in range(n):
            cx, cy = (int(v) for v in torch.randint(40, size - 40, (2,), generator=gen))
            r = int(torch.randint(12, 40, (1,), generator=gen))
            if k % 2:
                masks[k] = ((yy - cy) ** 2 + (xx - cx) ** 2 <= r * r).to(torch.uint8)
            else:
                masks[k, cy - r:cy + r, cx - r:cx + r] = 1
            image[masks[k].bool()] = torch.randint(0, 256, (3,), generator=gen, dtype=torch.uint8)
        items.append(PackDetInputs()({
            "image": image.numpy(), "boxes": _boxes_from_masks(masks.numpy()),
            "labels": torch.randint(0, 3, (n,), generator=gen).numpy(), "masks": masks.numpy()}))
    return items


def test_shapes_detector_step_and_detections_equal_detectron2(d2, tmp_path):
    """The side-by-side detector of docs/benchmarks.md (PE-Test backbone for speed), the same
    weights in both frameworks and every anchor and RoI sampled (so nothing is random): the
    five training losses, the backbone's gradients and the detections agree. Square anchors only:
    torchvision rounds the corners of the others (README, detection section)."""
    from detectron2.config import LazyConfig, instantiate
    from detectron2.structures import BitMasks, Boxes, Instances
    from detectron2.utils.events import EventStorage

    from pe_dense.data.collate import detection_collate
    from pe_dense.engine.runner import load_config
    from pe_dense.tasks.detection.model import MaskRCNN

    everything = 100_000
    init = tmp_path / "init.pt"
    torch.manual_seed(0)
    torch.save(create_backbone("PE-Test", image_size=256).state_dict(), init)
    cfg = load_config(str(ROOT / "configs/det/mask_rcnn_pe_spatial_t_shapes_cpu.py"))
    kwargs = {k: v for k, v in cfg.model.to_dict().items() if k != "type"}
    kwargs.update(backbone={**kwargs["backbone"], "name": "PE-Test", "weights": str(init)},
                  aspect_ratios=(1.0,),
                  rpn={**kwargs["rpn"], "batch_size_per_image": everything},
                  roi={**kwargs["roi"], "batch_size_per_image": everything,
                       "positive_fraction": 1.0})
    ours = MaskRCNN(**kwargs)
    d2cfg = LazyConfig.load(str(CONFIGS / "mask_rcnn_pe_spatial_t_shapes_cpu.py")).model
    d2cfg.backbone.net.variant = "PE-Test"
    d2cfg.pixel_mean, d2cfg.pixel_std = [127.5] * 3, [127.5] * 3   # ours: x / 127.5 - 1
    d2cfg.proposal_generator.anchor_generator.aspect_ratios = [[1.0]]
    d2cfg.proposal_generator.head.num_anchors = 1
    d2cfg.proposal_generator.batch_size_per_image = everything
    d2cfg.roi_heads.batch_size_per_image = everything
    d2cfg.roi_heads.positive_fraction = 1.0
    theirs = instantiate(d2cfg)
    _copy_detector_weights(ours, theirs, num_classes=3)

    items = _shapes_batch()
    batch = detection_collate(items, square_size=256)
    d2_batch = []
    for item in items:
        s = item["data_samples"]
        inst = Instances(s["img_size"])
        inst.gt_boxes, inst.gt_classes = Boxes(s["boxes"].clone()), s["labels"].clone()
        inst.gt_masks = BitMasks(s["masks"].bool())
        d2_batch.append({"image": item["inputs"], "instances": inst,
                         "height": s["ori_size"][0], "width": s["ori_size"][1]})

    losses = ours.train().loss(batch["inputs"], batch["data_samples"])
    with EventStorage(0):
        d2_losses = theirs.train()(d2_batch)
    names = {"loss_objectness": "loss_rpn_cls", "loss_rpn_box_reg": "loss_rpn_loc",
             "loss_classifier": "loss_cls", "loss_box_reg": "loss_box_reg",
             "loss_mask": "loss_mask"}
    for a, b in names.items():
        torch.testing.assert_close(losses[a], d2_losses[b], rtol=1e-5, atol=0, msg=a)
    sum(losses.values()).backward()
    sum(d2_losses.values()).backward()

    def grad(module):
        return torch.cat([p.grad.flatten() for p in module.parameters()])

    # Floating-point order only (detectron2's LayerNorm is written out in ops, ours is
    # F.layer_norm on a permuted map): measured 3.6e-4 apart.
    ours_grad, d2_grad = grad(ours.backbone), grad(theirs.backbone.net)
    assert (ours_grad - d2_grad).norm() / d2_grad.norm() < 2e-3

    with torch.no_grad():
        preds = ours.eval().predict(batch["inputs"], batch["data_samples"])
        d2_preds = theirs.eval()([{k: v for k, v in x.items() if k != "instances"}
                                  for x in d2_batch])
    for p, q in zip(preds, d2_preds, strict=True):
        q = q["instances"]
        assert len(p["boxes"]) == len(q) > 0
        torch.testing.assert_close(p["boxes"], q.pred_boxes.tensor, rtol=0, atol=1e-3)
        torch.testing.assert_close(p["scores"], q.scores, rtol=0, atol=1e-5)
        assert torch.equal(p["labels"], q.pred_classes)
        assert (p["masks"] == q.pred_masks).float().mean() > 0.999
