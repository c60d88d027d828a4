"""What ``pe-dense probe`` runs: encoders, tasks, data, the layer sweep and the head training.

The defaults are sized for a CPU on ``../shared/data`` (a few minutes for two small encoders):
CamVid (30 frames, 11 classes), NYU mini (10 frames) and two DAVIS-2016 sequences, images at
short side 224, 200 head-training iterations. The settings of the published protocols
(ADE20K 512 px and 40k iterations, NYUv2 train/test splits, DAVIS-2017 val at 480 px) are the
same fields with other values (see :mod:`pe_dense.engine.probe`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["TASKS", "METRICS", "ProbeSettings", "DEFAULT_DATA"]

TASKS = ("seg", "depth", "track")
# task -> (metric key in the per-block results, "max" or "min" is best, table title)
METRICS = {"seg": ("mIoU", "max", "seg mIoU"), "depth": ("rmse", "min", "depth RMSE (m)"),
           "track": ("J&F-Mean", "max", "track J&F")}
DEFAULT_DATA = Path("../shared/data")


@dataclass
class ProbeSettings:
    """One probe run (see the module docstring).

    ``backbones``: PE variants and ``timm/<name>`` encoders; ``weights``: one entry per
    backbone (None: random weights, marked so in every output); ``overrides``: per backbone
    name, ``create_backbone`` keyword arguments (e.g. a tiny timm model for tests:
    ``{"timm/vit_small_patch16_dinov3": {"depth": 2, "embed_dim": 64, "num_heads": 2}}``).
    ``layers``: the blocks swept,
    per encoder (``"all"``, ``"start:stop[:step]"`` such as ``"::2"``, or ``"3,7,-1"``).
    ``short_side``: segmentation and depth images are resized to this short side (pixels),
    both sides multiples of the encoder's patch. ``norm``: apply the encoder's final norm to
    every block (DINOv2 reads normed blocks; PE-Spatial has no final norm).

    Segmentation: ``seg_data`` is an ADE20K root (``images/training``, ``images/validation``;
    150 classes), a root with ``train/`` and ``test/`` (or ``val/`` when there is no
    ``test/``) subfolders, each of ``images/`` and ``labels/`` paired by name (trained on
    ``train/``, scored on ``test/``; ``seg_num_classes`` / ``seg_ignore_index`` as below), or
    one folder of ``images/`` and ``labels/`` paired by name (CamVid: 11 classes, void 11)
    split by ``eval_fraction`` (the last files are held out). Depth:
    ``depth_data`` is a NYU folder (``image_K.png`` / ``depth_K.png``, millimetres) split the
    same way, or, with ``depth_splits=(train_file, test_file)``, the root of the split-file
    layout; ``depth_upsample``: the ``LinearBinsHead``'s logit upsampling before the expectation
    over bins (4 is DINOv2's linear head, about 7x slower to train on a CPU; 1: the expectation
    at patch resolution, then bilinear). Tracking: ``davis_data`` is a DAVIS-layout root,
    ``sequences`` (default all fully annotated ones), each cut to ``max_frames`` (0: all),
    frames at ``track_short_side``.
    ``max_train`` / ``max_eval``: cap the images per split (0: all).

    Heads: one linear head per block (BN + 1x1 conv; depth: 256 bins), trained jointly on the
    frozen features, ``iters`` AdamW steps of ``batch_size`` images, ``lr`` with a linear
    warm-up over the first 5 % and a linear decay to 0. Features of the training images are
    kept in memory up to ``cache_mb`` (beyond it they are recomputed each step).
    """

    backbones: list[str]
    tasks: tuple[str, ...] = TASKS
    weights: list[str | None] | None = None
    overrides: dict[str, dict[str, Any]] = field(default_factory=dict)
    layers: str = "all"
    short_side: int = 224
    norm: bool = False
    seg_data: str = str(DEFAULT_DATA / "camvid_val")
    seg_num_classes: int = 11
    seg_ignore_index: int = 11
    depth_data: str = str(DEFAULT_DATA / "nyu_mini")
    depth_splits: tuple[str, str] | None = None
    min_depth: float = 1e-3
    max_depth: float = 10.0
    depth_upsample: int = 1
    davis_data: str = str(DEFAULT_DATA / "davis2016")
    sequences: list[str] | None = None
    track_short_side: int = 224
    max_frames: int = 20
    eval_fraction: float = 1 / 3
    max_train: int = 0
    max_eval: int = 0
    iters: int = 200
    batch_size: int = 4
    lr: float = 1e-3
    weight_decay: float = 1e-4
    seed: int = 0
    cache_mb: int = 4096
    device: str = "cpu"

    def __post_init__(self) -> None:
        self.backbones = [b.strip() for b in self.backbones if b.strip()]
        if not self.backbones:
            raise ValueError("give at least one backbone, e.g. --backbones "
                             "PE-Spatial-T16-512,timm/vit_small_patch16_dinov3")
        self.tasks = tuple(self.tasks)
        unknown = [t for t in self.tasks if t not in TASKS]
        if unknown or not self.tasks:
            raise ValueError(f"unknown task(s) {unknown}: use a comma list of {', '.join(TASKS)}")
        if self.weights is None:
            self.weights = [None] * len(self.backbones)
        self.weights = [w or None for w in self.weights]
        stray = sorted(set(self.overrides) - set(self.backbones))
        if stray:
            raise ValueError(f"overrides for {stray}, which are not among the backbones "
                             f"{self.backbones}")
        if len(self.weights) != len(self.backbones):
            raise ValueError(f"{len(self.weights)} weights for {len(self.backbones)} backbones: "
                             "give one entry per backbone, empty for random weights "
                             "(e.g. --weights ,dinov3.pth)")
        if not 0 < self.eval_fraction < 1:
            raise ValueError(f"eval_fraction {self.eval_fraction}: use a share in (0, 1)")
        for name in ("short_side", "track_short_side", "iters", "batch_size", "depth_upsample"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        if self.max_frames < 0 or self.max_frames in (1, 2):
            raise ValueError(f"max_frames {self.max_frames}: use 0 (all) or at least 3 (J&F "
                             "leaves out the first and last frames)")

    def check_data(self) -> None:
        """A ``FileNotFoundError`` naming the option when a task's data folder is missing
        (before anything is built or trained)."""
        where = {"seg": ("seg_data", "--seg-data"), "depth": ("depth_data", "--depth-data"),
                 "track": ("davis_data", "--davis")}
        for task in self.tasks:
            attr, option = where[task]
            path = Path(getattr(self, attr))
            if not path.is_dir():
                raise FileNotFoundError(f"{task} data folder {path} does not exist: pass "
                                        f"{option} (or --data, the folder holding camvid_val, "
                                        f"nyu_mini and davis2016), or leave {task} out of "
                                        "--tasks")
