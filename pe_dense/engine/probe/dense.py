"""The segmentation and depth probes: for every swept block, the task model's linear probe on
the frozen backbone (:class:`~pe_dense.tasks.segmentation.model.Segmentor` with a
``LinearHead``: BN + 1x1 conv; :class:`~pe_dense.tasks.depth.model.DepthEstimator` with a
``LinearBinsHead``: BN + 1x1 conv to 256 depth bins, expectation over the bins), all heads
trained together (one backbone pass per image feeds every block's head, and the features of the
training images are kept in memory), then scored on held-out images with the library's metrics
(:class:`~pe_dense.evaluation.segmentation.SegmentationEvaluator`: dataset-level mIoU;
:class:`~pe_dense.evaluation.depth.DepthEvaluator`: per-image RMSE / AbsRel inside the Eigen
crop, averaged).

Training: the image resized to the probe's short side (sides multiples of the patch), its label
or depth map resized to the same size with nearest neighbours (as mmseg's resize transform);
loss: pixel cross-entropy / SiLog (the task losses). Evaluation: logits / depth bilinearly
resized to the original label or depth map, as the task models predict.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import torch

from pe_dense.backbone.contract import Backbone
from pe_dense.data.depth import NYUFolderDataset, NYUSplitDataset
from pe_dense.data.segmentation import CAMVID_CLASSES, ADE20KDataset, SegFolderDataset
from pe_dense.engine.probe.features import TrainingItems, block_maps
from pe_dense.engine.probe.settings import ProbeSettings
from pe_dense.evaluation.depth import DepthEvaluator
from pe_dense.evaluation.segmentation import SegmentationEvaluator
from pe_dense.tasks.depth.losses import silog_loss
from pe_dense.tasks.depth.model import DepthEstimator
from pe_dense.tasks.segmentation.losses import seg_cross_entropy
from pe_dense.tasks.segmentation.model import Segmentor

__all__ = ["seg_probe", "depth_probe", "seg_splits", "depth_splits", "train_heads"]

log = logging.getLogger(__name__)

Heads = list[tuple[int, torch.nn.Module]]  # (block index, task model), in sweep order
Split = tuple[Sequence[dict], list[int]]  # a dataset and the indices of its samples used


def _held_out(n: int, settings: ProbeSettings, source: str) -> tuple[list[int], list[int]]:
    """The first files train, the last ``eval_fraction`` are held out (capped by max_*)."""
    n_eval = max(1, round(n * settings.eval_fraction))
    train, held = list(range(n - n_eval)), list(range(n - n_eval, n))
    if not train:
        raise ValueError(f"{source} has {n} sample(s): too few to hold {n_eval} out and train "
                         "on the rest")
    return _cap(train, settings.max_train), _cap(held, settings.max_eval)


def _device(backbone: Backbone) -> torch.device:
    return next(backbone.parameters()).device


def _cap(keys: list[int], limit: int) -> list[int]:
    return keys[:limit] if limit else keys


def _split_folders(root: Path) -> tuple[Path, Path] | None:
    """(train, eval) subfolders of a root holding ``train/`` and ``test/`` (else ``val/``),
    each with ``images/`` and ``labels/``; None when ``root`` has no ``train/images``."""
    if not (root / "train" / "images").is_dir():
        return None
    for name in ("test", "val"):
        if (root / name / "images").is_dir():
            return root / "train", root / name
    raise FileNotFoundError(f"{root} has train/images but neither test/images nor val/images: "
                            "add the evaluation split, or point --seg-data at one folder of "
                            "images/ and labels/ (split by eval_fraction)")


def seg_splits(settings: ProbeSettings) -> tuple[Split, Split, int, int]:
    """(train, eval, num_classes, ignore_index): ADE20K's training / validation splits when
    ``seg_data`` has ``images/training``; ``train/`` and ``test/`` (or ``val/``) label-map
    folders when it has ``train/images``; else held-out files of one label-map folder."""
    root = Path(settings.seg_data)
    if (root / "images" / "training").is_dir():
        train, test = ADE20KDataset(root, split="training"), ADE20KDataset(root,
                                                                           split="validation")
        return ((train, _cap(list(range(len(train))), settings.max_train)),
                (test, _cap(list(range(len(test))), settings.max_eval)), 150, train.ignore_index)
    k, ignore = settings.seg_num_classes, settings.seg_ignore_index
    kw = dict(num_classes=k, ignore_index=ignore,
              classes=CAMVID_CLASSES if k == len(CAMVID_CLASSES) else None)
    folders = _split_folders(root)
    if folders is not None:
        train, test = (SegFolderDataset(f, **kw) for f in folders)
        log.info("seg data: %d training images in %s, %d evaluation images in %s", len(train),
                 folders[0], len(test), folders[1])
        return ((train, _cap(list(range(len(train))), settings.max_train)),
                (test, _cap(list(range(len(test))), settings.max_eval)), k, ignore)
    data = SegFolderDataset(root, **kw)
    train, held = _held_out(len(data), settings, str(root))
    return (data, train), (data, held), k, ignore


def depth_splits(settings: ProbeSettings) -> tuple[Split, Split]:
    """(train, eval): the split files under ``depth_data`` when ``depth_splits`` is given, else
    held-out pairs of a NYU folder."""
    kw = {"max_depth": settings.max_depth}
    if settings.depth_splits:
        train_file, test_file = settings.depth_splits
        train = NYUSplitDataset(settings.depth_data, train_file, **kw)
        test = NYUSplitDataset(settings.depth_data, test_file, **kw)
        return ((train, _cap(list(range(len(train))), settings.max_train)),
                (test, _cap(list(range(len(test))), settings.max_eval)))
    data = NYUFolderDataset(settings.depth_data, **kw)
    train, held = _held_out(len(data), settings, settings.depth_data)
    return (data, train), (data, held)


def _schedule(iters: int) -> Callable[[int], float]:
    """Linear warm-up over the first 5 % of the steps, then linear decay to 0."""
    warmup = max(1, iters // 20)
    return lambda step: min((step + 1) / warmup, max(0.0, (iters - step) / max(1, iters - warmup)))


def _batches(n: int, batch_size: int, iters: int, seed: int) -> Iterator[list[int]]:
    """``iters`` batches of item indices, reshuffled every pass over the ``n`` items."""
    gen = torch.Generator().manual_seed(seed)
    order: list[int] = []
    for _ in range(iters):
        batch = []
        while len(batch) < min(batch_size, n):
            if not order:
                order = torch.randperm(n, generator=gen).tolist()
            batch.append(order.pop())
        yield batch


def _grouped(items: list[tuple[list[torch.Tensor], torch.Tensor]]
             ) -> list[tuple[list[torch.Tensor], torch.Tensor, float]]:
    """Items of one batch stacked by size: (per-block (B, C, h, w) maps, (B, ...) targets, the
    group's share of the batch); images of other sizes form their own groups."""
    groups: dict[tuple, list] = {}
    for maps, target in items:
        groups.setdefault((tuple(maps[0].shape), tuple(target.shape)), []).append((maps, target))
    out = []
    for members in groups.values():
        maps = [torch.stack([m[j] for m, _ in members]) for j in range(len(members[0][0]))]
        out.append((maps, torch.stack([t for _, t in members]), len(members) / len(items)))
    return out


def train_heads(heads: Heads, items: TrainingItems, loss_fn: Callable[..., torch.Tensor],
                settings: ProbeSettings) -> dict[int, float]:
    """Train every block's head on its block's maps (AdamW, warm-up + linear decay; heads are
    independent, so one summed backward trains each as if alone). ``loss_fn(model, maps
    (B, C, h, w), targets)``. Returns each block's mean loss over the last 10 % of steps."""
    params = [p for _, m in heads for p in m.head.parameters()]
    opt = torch.optim.AdamW(params, lr=settings.lr, weight_decay=settings.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, _schedule(settings.iters))
    tail = max(1, settings.iters // 10)
    last: dict[int, list[float]] = {layer: [] for layer, _ in heads}
    for _, model in heads:
        model.train()
    for step, batch in enumerate(_batches(len(items), settings.batch_size, settings.iters,
                                          settings.seed)):
        terms = []
        for maps, target, share in _grouped([items[i] for i in batch]):
            for j, (layer, model) in enumerate(heads):
                terms.append(share * loss_fn(model, maps[j], target))
                if step >= settings.iters - tail:
                    last[layer].append(float(terms[-1].detach()))
        total = torch.stack(terms).sum()
        opt.zero_grad(set_to_none=True)
        total.backward()
        opt.step()
        sched.step()
    for _, model in heads:
        model.eval()
    return {layer: sum(v) / tail for layer, v in last.items()}


def _evaluate(heads: Heads, backbone: Backbone, split: Split, settings: ProbeSettings,
              update: Callable[[int, torch.nn.Module, torch.Tensor, dict], None]) -> None:
    """One backbone pass per held-out image; ``update(layer, model, maps (1, C, h, w),
    sample)`` scores each block's head on it."""
    dataset, keys = split
    indices = [layer for layer, _ in heads]
    with torch.no_grad():
        for key in keys:
            sample = dataset[key]
            maps = block_maps(backbone, sample["image"], indices, settings.short_side,
                              settings.norm)
            for (layer, model), m in zip(heads, maps, strict=True):
                update(layer, model, m[None], sample)


def seg_probe(backbone: Backbone, indices: Sequence[int], settings: ProbeSettings
              ) -> dict[int, dict[str, float]]:
    """Linear segmentation probe per block: ``{block: {"mIoU", "aAcc", "mAcc",
    "train_loss"}}`` (percentages, as the evaluator gives them)."""
    train, held, num_classes, ignore = seg_splits(settings)
    heads = [(i, Segmentor(backbone=backbone, head={"type": "LinearHead"},
                           num_classes=num_classes, indices=[i], ignore_index=ignore
                           ).to(_device(backbone))) for i in indices]
    items = TrainingItems(*train, "label", backbone, indices, settings.short_side,
                          settings.norm, settings.cache_mb * 2**20)

    def loss_fn(model: Segmentor, maps: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return seg_cross_entropy(model.decode([maps], tuple(target.shape[-2:])), target, ignore)

    losses = train_heads(heads, items, loss_fn, settings)
    evaluators = {i: SegmentationEvaluator(num_classes, ignore) for i in indices}

    def update(layer: int, model: Segmentor, maps: torch.Tensor, sample: dict) -> None:
        label = sample["label"]
        logits = model.decode([maps], tuple(label.shape))
        evaluators[layer].update(logits[0].argmax(0).cpu(), label)

    _evaluate(heads, backbone, held, settings, update)
    out = {}
    for i in indices:
        m = evaluators[i].compute()
        out[i] = {k: float(m[k]) for k in ("mIoU", "aAcc", "mAcc")} | {"train_loss": losses[i]}
    log.info("seg probe: %d training / %d held-out images, %d backbone passes", len(items),
             len(held[1]), items.passes + len(held[1]))
    return out


def depth_probe(backbone: Backbone, indices: Sequence[int], settings: ProbeSettings
                ) -> dict[int, dict[str, float]]:
    """Linear (256-bin) depth probe per block: ``{block: {"rmse", "abs_rel", "d1",
    "train_loss"}}`` (metres; Eigen crop, per-image errors averaged)."""
    train, held = depth_splits(settings)
    lo, hi = settings.min_depth, settings.max_depth
    head = {"type": "LinearBinsHead", "upsample": settings.depth_upsample}
    heads = [(i, DepthEstimator(backbone=backbone, head=head, indices=[i], min_depth=lo,
                                max_depth=hi).to(_device(backbone))) for i in indices]
    items = TrainingItems(*train, "depth", backbone, indices, settings.short_side,
                          settings.norm, settings.cache_mb * 2**20)

    def loss_fn(model: DepthEstimator, maps: torch.Tensor, target: torch.Tensor
                ) -> torch.Tensor:
        pred = model.decode([maps], tuple(target.shape[-2:]))
        return silog_loss(pred, target, 0.15, lo, hi)

    losses = train_heads(heads, items, loss_fn, settings)
    evaluators = {i: DepthEvaluator(lo, hi, eigen_crop=True) for i in indices}

    def update(layer: int, model: DepthEstimator, maps: torch.Tensor, sample: dict) -> None:
        gt = sample["depth"][0]
        evaluators[layer].update(model.decode([maps], tuple(gt.shape))[0, 0].cpu(), gt)

    _evaluate(heads, backbone, held, settings, update)
    out = {}
    for i in indices:
        m = evaluators[i].compute()
        out[i] = {k: float(m[k]) for k in ("rmse", "abs_rel", "d1")} | {"train_loss": losses[i]}
    log.info("depth probe: %d training / %d held-out images, %d backbone passes", len(items),
             len(held[1]), items.passes + len(held[1]))
    return out
