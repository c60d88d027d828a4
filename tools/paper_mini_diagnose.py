"""Why a stage-1 model of the paper in miniature knows some attributes and not others.

Three measurements on a run of ``tools/paper_in_miniature.py`` (its ``--out`` folder):

1. ``text``: cosine similarity of the stage-1 text embeddings of captions that differ in one
   attribute only (colour, shape, size, background): near 1 means the text tower ignores it;
2. ``probe``: linear classifiers (logistic regression, 300 full-batch L-BFGS steps) of colour,
   shape and size from the stage-1 image embedding and from each block's mean patch token,
   trained on single-object training scenes and scored on the held-out zero-shot images: does
   the vision tower carry the attribute at all;
3. ``supervised``: a PE-Mini vision tower trained from scratch *with shape labels* (cross-entropy
   on single-object scenes, AdamW 1e-3, batch 64), shape accuracy on the zero-shot images every
   ``--eval-every`` steps: how many labelled samples this architecture needs to see shape;
   ``--cnn-steps N`` trains a small CNN the same way, a reference with a convolutional prior
   (``--skip-vit --cnn-steps N`` adds only it to an existing ``--out``).

    OMP_NUM_THREADS=2 python tools/paper_mini_diagnose.py --run work_dirs/paper_mini \
        --steps 1500 --out work_dirs/paper_mini/diagnose.json
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from pe_dense.backbone.clip import create_clip
from pe_dense.backbone.factory import create_backbone
from pe_dense.backbone.inputs import normalize
from pe_dense.data.images import read_square
from pe_dense.utils.io import atomic_write_text

ATTRIBUTES = ("colour", "shape", "size")


def text_similarity(clip: Any, meta: dict[str, Any]) -> dict[str, float]:
    """Mean cosine between captions that differ in one attribute, per attribute."""
    base = dict(size="small", colour=meta["colours"][0], shape=meta["shapes"][0])
    values = {"colour": meta["colours"], "shape": meta["shapes"], "size": meta["sizes"]}

    def caption(**kw: str) -> str:
        a = {**base, **kw}
        return f"a {a['size']} {a['colour']} {a['shape']}"

    out = {}
    with torch.no_grad():
        for attr, options in values.items():
            texts = [caption(**{attr: v}) for v in options]
            e = clip.encode_text(clip.tokenize(texts), normalize=True)
            sims = e @ e.T
            out[attr] = float(sims[~torch.eye(len(texts), dtype=torch.bool)].mean())
        e = clip.encode_text(clip.tokenize([caption(), caption() + " on a striped background"]),
                             normalize=True)
        out["background"] = float(e[0] @ e[1])
    return out


def single_objects(world: Path, meta: dict[str, Any], limit: int
                   ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Single-object training scenes: (N, 3, S, S) uint8 and per attribute (N,) labels."""
    records = [r for r in json.loads((world / "train" / "captions.json").read_text())
               if len(r["objects"]) == 1][:limit]
    images = torch.stack([read_square(world / "train" / "images" / r["file"], meta["image_size"])
                          for r in records])
    return images, _labels([r["objects"][0] for r in records], meta, ATTRIBUTES)


def zeroshot_set(world: Path, meta: dict[str, Any]
                 ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The zero-shot images (one object each) and their colour and shape labels."""
    truth = json.loads((world / "zeroshot" / "labels.json").read_text())
    images = torch.stack([read_square(world / "zeroshot" / "images" / t["file"],
                                      meta["image_size"]) for t in truth])
    return images, _labels(truth, meta, ("colour", "shape"))


def _labels(objects: list[dict[str, str]], meta: dict[str, Any], attributes: Sequence[str]
            ) -> dict[str, torch.Tensor]:
    vocab = {"colour": meta["colours"], "shape": meta["shapes"], "size": meta["sizes"]}
    return {a: torch.tensor([vocab[a].index(o[a]) for o in objects]) for a in attributes}


@torch.no_grad()
def features(vit: Any, images: torch.Tensor, batch: int = 128) -> list[torch.Tensor]:
    """Per image: the pooled embedding, then each block's mean patch token."""
    outs: list[list[torch.Tensor]] = []
    for i in range(0, len(images), batch):
        x = normalize(images[i:i + batch])
        blocks = vit.forward_intermediates(x, indices=list(range(vit.num_layers)),
                                           output_fmt="NLC")
        outs.append([vit(x)] + [b.mean(1) for b in blocks])
    return [torch.cat(parts) for parts in zip(*outs, strict=True)]


def linear_accuracy(train: torch.Tensor, y: torch.Tensor, test: torch.Tensor,
                    y_test: torch.Tensor) -> float:
    """Logistic regression (standardised features, L-BFGS, weight decay 1e-3)."""
    mean, std = train.mean(0), train.std(0) + 1e-6
    a, b = (train - mean) / std, (test - mean) / std
    w = torch.zeros(a.shape[1], int(y.max()) + 1, requires_grad=True)
    opt = torch.optim.LBFGS([w], max_iter=300, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = F.cross_entropy(a @ w, y) + 1e-3 * w.pow(2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    return float(((b @ w).argmax(1) == y_test).float().mean())


def probe(vit: Any, train: tuple, test: tuple) -> dict[str, list[float]]:
    """Per attribute: accuracy from [embedding, block 0, ..., block L-1]."""
    f_train, f_test = features(vit, train[0]), features(vit, test[0])
    return {a: [linear_accuracy(p, train[1][a], q, test[1][a])
                for p, q in zip(f_train, f_test, strict=True)] for a in test[1]}


def small_cnn() -> torch.nn.Module:
    """A reference with a convolutional prior: four 3x3 conv + ReLU + 2x2 max-pool stages
    (32-64-96-96 channels), global average pooling; about 0.17 M parameters."""
    layers: list[torch.nn.Module] = []
    for c_in, c_out in ((3, 32), (32, 64), (64, 96), (96, 96)):
        layers += [torch.nn.Conv2d(c_in, c_out, 3, padding=1), torch.nn.ReLU(),
                   torch.nn.MaxPool2d(2)]
    return torch.nn.Sequential(*layers, torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten())


def supervised(train: tuple, test: tuple, steps: int, every: int, seed: int = 0,
               model: str = "vit") -> list[tuple[int, float, float]]:
    """PE-Mini (``model="vit"``) or :func:`small_cnn` from scratch with shape labels:
    (step, seconds, zero-shot-set shape accuracy)."""
    torch.manual_seed(seed)
    vit = create_backbone("PE-Mini") if model == "vit" else small_cnn()
    head = torch.nn.Linear(vit.proj.shape[1] if model == "vit" else 96, 4)
    params = list(vit.parameters()) + list(head.parameters())
    opt = torch.optim.AdamW(params, lr=1e-3, weight_decay=0.05)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda i: min(1.0, (i + 1) / 50))
    images, y = train[0], train[1]["shape"]
    curve, began = [], time.perf_counter()
    for step in range(1, steps + 1):
        idx = torch.randint(0, len(images), (64,))
        loss = F.cross_entropy(head(vit(normalize(images[idx]))), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        if step % every == 0 or step == steps:
            with torch.no_grad():
                acc = float((head(vit(normalize(test[0]))).argmax(1) == test[1]["shape"])
                            .float().mean())
            curve.append((step, round(time.perf_counter() - began, 1), acc))
            print(f"supervised {model} step {step}: zero-shot-set shape accuracy {acc:.3f}",
                  flush=True)
    return curve


def _vit_measurements(run: Path, meta: dict[str, Any], train: tuple, test: tuple,
                      args: argparse.Namespace) -> dict[str, Any]:
    clip = create_clip("PE-Mini", weights=str(run / "stage1" / "clip.pt")).eval()
    result: dict[str, Any] = {"text_similarity": text_similarity(clip, meta)}
    print("text similarity of captions differing in one attribute:", result["text_similarity"])
    result["probe_stage1"] = probe(clip.visual, train, test)
    torch.manual_seed(0)
    result["probe_random"] = probe(create_backbone("PE-Mini").eval(), train, test)
    print("linear probes [embedding, block 0..7]:", json.dumps(
        {k: {a: [round(v, 3) for v in vs] for a, vs in p.items()}
         for k, p in result.items() if k.startswith("probe")}))
    if args.steps:
        result["supervised_shape"] = supervised(train, test, args.steps, args.eval_every)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", default="work_dirs/paper_mini")
    parser.add_argument("--steps", type=int, default=1500, help="supervised steps (0: skip)")
    parser.add_argument("--eval-every", type=int, default=250)
    parser.add_argument("--train-images", type=int, default=6000)
    parser.add_argument("--cnn-steps", type=int, default=0,
                        help="also train small_cnn with shape labels this many steps")
    parser.add_argument("--skip-vit", action="store_true",
                        help="only the CNN reference (keeps the other numbers of --out)")
    parser.add_argument("--out", default=None, help="JSON (default RUN/diagnose.json)")
    args = parser.parse_args(argv)
    run = Path(args.run)
    world = run / "world"
    meta = json.loads((world / "meta.json").read_text())
    out = Path(args.out or run / "diagnose.json")
    train, test = single_objects(world, meta, args.train_images), zeroshot_set(world, meta)
    result: dict[str, Any] = json.loads(out.read_text()) if args.skip_vit else {}
    if not args.skip_vit:
        result.update(_vit_measurements(run, meta, train, test, args))
    if args.cnn_steps:
        result["supervised_shape_cnn"] = supervised(train, test, args.cnn_steps,
                                                    args.eval_every, model="cnn")
    atomic_write_text(out, json.dumps(result, indent=1))
    print(f"written {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
