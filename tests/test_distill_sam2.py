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


def test_missing_sam2_names_the_extra(monkeypatch):
    from pe_dense.distill.teachers import build_teacher

    real_import = builtins.__import__

    def no_sam2(name, *args, **kwargs):
        if name == "sam2" or name.startswith("sam2."):
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    for mod in [m for m in sys.modules if m == "sam2" or m.startswith("sam2.")]:
        monkeypatch.delitem(sys.modules, mod)
    monkeypatch.setattr(builtins, "__import__", no_sam2)
    with pytest.raises(ImportError, match=r"pip install 'pe-dense\[sam2\]'"):
        build_teacher(SAM_TINY)


def test_sam2_teacher_tiny_random():
    pytest.importorskip("sam2")
    from pe_dense.distill.teachers import build_teacher

    teacher = build_teacher(SAM_TINY, device="cpu")
    assert teacher.out_channels == 9 and teacher.image_size == 256
    grid = teacher.point_grid(torch.device("cpu"))
    assert grid.shape == (9, 2) and grid[0].tolist() == pytest.approx([256 / 6, 256 / 6])
    x = torch.rand(1, 3, 64, 96) * 2 - 1
    out = teacher(x, (4, 6))
    assert out.shape == (1, 9, 4, 6) and out.dtype == torch.float32
    assert torch.isfinite(out).all() and out.abs().max() <= 32
    assert out.std() > 0  # real, varying logits, not a constant
    again = build_teacher(SAM_TINY, device="cpu")  # the same seeded random weights
    for (name, a), (_, b) in zip(teacher.state_dict().items(), again.state_dict().items(),
                                 strict=True):
        assert torch.equal(a, b), name
    desc = teacher.describe()
    assert desc["kind"] == "sam2" and desc["points_per_side"] == 3
    assert not any(p.requires_grad for p in teacher.parameters())

    # in the trainer: the locality loss on SAM logits runs online and back-propagates
    from pe_dense.distill.model import DistillModel

    model = DistillModel(student=dict(model="PE-Test"), teachers=[SAM_TINY], crop_size=64)
    model._teachers["sam"] = teacher  # the teacher built above (saves building it again)
    losses = model(torch.rand(1, 3, 80, 80) * 2 - 1, mode="loss")
    assert set(losses) == {"loss_sam_locality", "sam_corr"}
    losses["loss_sam_locality"].backward()
    assert model.student.conv1.weight.grad.abs().sum() > 0
