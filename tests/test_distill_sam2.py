"""SAM 2 teacher: the missing-package message, and (with ``sam2`` installed) the package's tiny
hiera-t config with random weights on a small image and a small prompt grid."""

from __future__ import annotations

import builtins
import sys

import pytest
import torch

SAM_TINY = dict(name="sam", kind="sam2", config="configs/sam2.1/sam2.1_hiera_t.yaml",
                checkpoint=None, image_size=256, points_per_side=3, seed=0,
                losses=dict(locality=1.0))


def test_sam2_teacher_needs_the_integration_builder():
    from pe_dense.distill.teachers import build_teacher

    with pytest.raises(ValueError, match="pe_dense.integrations.sam2"):
        build_teacher(SAM_TINY)


def test_missing_sam2_names_the_extra(monkeypatch):
    from pe_dense.distill.teachers import build_teacher
    from pe_dense.integrations.sam2 import build_sam2_teacher

    real_import = builtins.__import__

    def no_sam2(name, *args, **kwargs):
        if name == "sam2" or name.startswith("sam2."):
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    for mod in [m for m in sys.modules if m == "sam2" or m.startswith("sam2.")]:
        monkeypatch.delitem(sys.modules, mod)
    monkeypatch.setattr(builtins, "__import__", no_sam2)
    with pytest.raises(ImportError, match=r"pip install 'pe-dense\[sam2\]'"):
        build_teacher(SAM_TINY, builders={"sam2": build_sam2_teacher})


def test_sam2_teacher_tiny_random():
    pytest.importorskip("sam2")
    import torch.nn.functional as F

    from pe_dense.distill.sam2_teacher import IMAGENET_MEAN, IMAGENET_STD
    from pe_dense.distill.teachers import build_teacher
    from pe_dense.engine.tasks.distill import TEACHER_BUILDERS

    teacher = build_teacher(SAM_TINY, device="cpu", builders=TEACHER_BUILDERS)
    assert teacher.out_channels == 9 and teacher.image_size == 256
    grid = teacher.point_grid(torch.device("cpu"))
    assert grid.shape == (9, 2) and grid[0].tolist() == pytest.approx([256 / 6, 256 / 6])
    x = torch.rand(1, 3, 64, 96) * 2 - 1
    # SAM 2's ImageNet normalisation of the [0, 1] image, applied directly to PE's [-1, 1] input
    ref = F.interpolate((x + 1) / 2, size=(256, 256), mode="bilinear", align_corners=False)
    ref = (ref - torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)) / torch.tensor(
        IMAGENET_STD).view(1, 3, 1, 1)
    assert torch.allclose(teacher.sam_input(x), ref, atol=1e-5)
    out = teacher(x, (4, 6))
    assert out.shape == (1, 9, 4, 6) and out.dtype == torch.float32
    assert torch.isfinite(out).all() and out.abs().max() <= 32
    assert out.std() > 0  # real, varying logits, not a constant
    # the same seeded random weights
    again = build_teacher(SAM_TINY, device="cpu", builders=TEACHER_BUILDERS)
    for (name, a), (_, b) in zip(teacher.state_dict().items(), again.state_dict().items(),
                                 strict=True):
        assert torch.equal(a, b), name
    desc = teacher.describe()
    assert desc["kind"] == "sam2" and desc["points_per_side"] == 3
    assert not any(p.requires_grad for p in teacher.parameters())
    teacher.train()
    assert not teacher.training and not teacher.model.training  # frozen: stays in eval mode

    # in the trainer: the locality loss on SAM logits runs online and back-propagates
    from pe_dense.distill.model import DistillModel

    model = DistillModel(student=dict(model="PE-Test"), teachers=[SAM_TINY], crop_size=64)
    model._teachers["sam"] = teacher  # the teacher built above (saves building it again)
    losses = model.loss(torch.randint(0, 256, (1, 3, 80, 80), dtype=torch.uint8))
    assert set(losses) == {"loss_sam_locality", "sam_corr"}
    losses["loss_sam_locality"].backward()
    assert model.student.conv1.weight.grad.abs().sum() > 0
