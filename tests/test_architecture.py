"""Architecture guards (DESIGN.md "Layers", STYLE.md rule 8).

1. The library (every module but ``pe_dense.engine``, ``pe_dense.integrations`` and
   ``pe_dense.registry``) imports, and its task models train and predict in plain PyTorch, with
   mmengine and the optional frameworks made unimportable.
2. No function in ``pe_dense/`` is longer than 50 lines.
3. The import-linter contracts of ``setup.cfg`` hold.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MARKER = "LIBRARY RUNS WITHOUT MMENGINE"
MAX_FUNCTION_LINES = 50

# Runs in a fresh interpreter: the blocked names must be None before anything imports them.
CHILD = f"""
import sys
BLOCKED = ("mmengine", "mmseg", "mmcv", "detectron2", "sam2")
for name in BLOCKED:
    sys.modules[name] = None

import importlib, pkgutil
import numpy as np
import torch
import pe_dense

torch.manual_seed(0)
SKIP = ("pe_dense.engine", "pe_dense.integrations", "pe_dense.registry")

def walk(path, prefix):
    # pkgutil.walk_packages would import the skipped packages to look inside them.
    for info in pkgutil.iter_modules(path, prefix):
        if info.name == SKIP[2] or info.name.startswith(SKIP[:2]):
            continue
        module = importlib.import_module(info.name)
        if info.ispkg:
            walk(module.__path__, info.name + ".")

walk(pe_dense.__path__, "pe_dense.")

from pe_dense.data.collate import pad_images
from pe_dense.tasks.depth.model import DepthEstimator
from pe_dense.tasks.detection.model import MaskRCNN
from pe_dense.tasks.segmentation.model import Segmentor
from pe_dense.tracking import Tracker

SIZES = [(48, 64), (40, 56)]
images = [torch.randint(0, 256, (3, h, w), dtype=torch.uint8) for h, w in SIZES]
arrays = [im.permute(1, 2, 0).numpy() for im in images]

def train_step(model, batch, samples, keys):
    model.train()
    losses = model.loss(batch, samples)
    assert keys <= set(losses), sorted(losses)
    assert all(torch.isfinite(v).all() for v in losses.values()), losses
    sum(losses.values()).backward()
    model.eval()

def has_grad(module):
    return any(p.grad is not None and p.grad.abs().sum() > 0 for p in module.parameters())

# detection: Mask R-CNN on the p2..p6 pyramid (batches padded to 64)
det = MaskRCNN(backbone={{"name": "PE-Test"}}, num_classes=2, pyramid={{"out_channels": 16}},
               rpn={{"pre_nms_top_n": {{"training": 100, "testing": 100}},
                    "post_nms_top_n": {{"training": 50, "testing": 50}}}},
               box_head={{"conv_dims": (16,), "fc_dims": (32,)}},
               mask_head={{"conv_dims": (16,)}}, roi={{"batch_size_per_image": 16}})
batch = pad_images(images, size_divisor=64)
assert batch.shape == (2, 3, 64, 64) and batch.dtype == torch.uint8
samples = []
for h, w in SIZES:
    masks = torch.zeros(1, h, w, dtype=torch.uint8)
    masks[0, 8:32, 4:40] = 1
    samples.append({{"img_size": (h, w), "boxes": torch.tensor([[4.0, 8.0, 40.0, 32.0]]),
                    "labels": torch.tensor([1]), "masks": masks}})
train_step(det, batch, samples, {{"loss_objectness", "loss_rpn_box_reg", "loss_classifier",
                                  "loss_box_reg", "loss_mask"}})
assert has_grad(det.backbone) and has_grad(det.roi_heads), "detector got no gradients"
with torch.no_grad():
    preds = det.predict(batch, samples)
for pred, (h, w) in zip(preds, SIZES):
    n = len(pred["boxes"])
    assert pred["boxes"].shape == (n, 4) and pred["scores"].shape == (n,)
    assert pred["masks"].shape == (n, h, w) and pred["masks"].dtype == torch.bool
(pred,) = det.predict_images(arrays[1:])
assert pred["masks"].shape[1:] == SIZES[1]

# segmentation: linear probe on a trainable backbone (batches padded to the patch, 16)
seg = Segmentor(backbone={{"name": "PE-Test"}}, head={{"type": "LinearHead"}}, num_classes=4,
                ignore_index=255, freeze_backbone=False)
batch = pad_images(images, size_divisor=seg.size_divisor)
assert batch.shape == (2, 3, 48, 64)
labels = torch.full((2, 48, 64), 255, dtype=torch.long)
for i, (h, w) in enumerate(SIZES):
    labels[i, :h, :w] = torch.randint(0, 4, (h, w))
samples = [{{"label": lab, "size": size}} for lab, size in zip(labels, SIZES)]
train_step(seg, batch, samples, {{"loss_ce", "acc_seg"}})
assert has_grad(seg.backbone) and has_grad(seg.head), "segmentor got no gradients"
preds = seg.predict(batch, samples)
assert [tuple(p["pred"].shape) for p in preds] == SIZES
assert all(p["pred"].max() < 4 for p in preds)
out = seg.predict_images(arrays)
assert [o.shape for o in out] == SIZES and out[0].dtype == np.int64

# depth: DPT head on a frozen backbone
dep = DepthEstimator(backbone={{"name": "PE-Test"}}, min_depth=1e-3, max_depth=10.0,
                     head={{"type": "DPTHead", "features": 16, "out_channels": (8, 16, 32, 32)}})
batch = pad_images(images, size_divisor=dep.size_divisor)
depth = torch.zeros(2, 1, 48, 64)
for i, (h, w) in enumerate(SIZES):
    depth[i, :, :h, :w] = torch.rand(1, h, w) * 4 + 0.5
samples = [{{"depth": d, "size": size}} for d, size in zip(depth, SIZES)]
train_step(dep, batch, samples, {{"loss_silog"}})
assert has_grad(dep.head), "depth head got no gradients"
assert all(p.grad is None for p in dep.backbone.parameters()), "frozen backbone got gradients"
preds = dep.predict(batch, samples)
assert [tuple(p["pred_depth"].shape) for p in preds] == SIZES
assert all(1e-3 <= float(p["pred_depth"].min()) <= float(p["pred_depth"].max()) <= 10.0
           for p in preds)
out = dep.predict_images(arrays)
assert [o.shape for o in out] == SIZES and out[0].dtype == np.float32

# tracking: label propagation on backbone features
tracker = Tracker(seg.backbone.eval(), layer=-1, short_side=64)
frame = arrays[0]
mask = np.zeros(frame.shape[:2], np.uint8)
mask[:24, :32] = 1
assert (tracker.reset(frame, mask) == mask).all()
out = tracker.update(frame)
assert out.shape == mask.shape and out.dtype == np.uint8 and set(np.unique(out)) <= {{0, 1}}
assert tracker.num_frames == 2

leaked = sorted(m for m, v in sys.modules.items() if v is not None
                and m.startswith(BLOCKED + SKIP))
assert not leaked, leaked
print("{MARKER}")
"""


def test_library_imports_and_runs_without_mmengine():
    proc = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True,
                          cwd=ROOT, timeout=300)
    assert proc.returncode == 0 and MARKER in proc.stdout, proc.stderr[-4000:]


def _long_functions(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    return [f"{path.relative_to(ROOT)}:{node.lineno} {node.name} "
            f"({node.end_lineno - node.lineno + 1} lines)"
            for node in ast.walk(tree)
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
            and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES]


def test_no_function_is_longer_than_50_lines():
    offenders = [f for path in sorted((ROOT / "pe_dense").rglob("*.py"))
                 for f in _long_functions(path)]
    assert not offenders, "functions over 50 lines:\n" + "\n".join(offenders)


def test_import_linter_contracts_hold():
    pytest.importorskip("importlinter")
    # The console script: `python -m importlinter.cli` runs nothing and exits 0.
    script = Path(sys.executable).with_name("lint-imports")
    if not script.is_file():
        pytest.skip(f"{script} not installed")
    proc = subprocess.run([str(script)], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]


# The backbone contract (pe_dense.backbone.contract.Backbone) is the only encoder type the
# library names outside pe_dense/backbone/. Two places name PE's class on purpose: the package
# root re-exports it as public API (pe_dense.PEViT), and integrations/ registers PE's own class in
# detectron2 and mmseg (their configs say PEViTBackbone and load checkpoints by PEViT's keys;
# other encoders reach those frameworks' tasks through pe_dense's own task models).
CONCRETE_BACKBONE_ALLOWED = ("pe_dense/__init__.py", "pe_dense/integrations/")


def test_only_backbone_names_a_concrete_encoder_class():
    import re

    pattern = re.compile(r"\b(PEViT|TimmBackbone)\b")
    offenders = []
    for path in sorted((ROOT / "pe_dense").rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        if rel.startswith("pe_dense/backbone/") or rel.startswith(CONCRETE_BACKBONE_ALLOWED):
            continue
        offenders += [f"{rel}:{i}: {line.strip()}"
                      for i, line in enumerate(path.read_text().splitlines(), 1)
                      if pattern.search(line)]
    assert not offenders, ("name the contract (pe_dense.backbone.contract.Backbone), not a "
                           "concrete encoder class:\n" + "\n".join(offenders))
