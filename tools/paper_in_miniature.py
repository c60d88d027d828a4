"""The paper in miniature, in one command: train a small contrastive model here, find where its
best dense features are, align them with the distillation trainer, and prompt it with text.

    OMP_NUM_THREADS=2 python tools/paper_in_miniature.py            # ~40 min on 2 CPU cores
    python tools/paper_in_miniature.py --tiny --out /tmp/mini       # every stage in seconds

Stages (each runs the user-facing ``pe-dense`` command it names, in this process, and prints it):

1. ``world``: the captioned synthetic world (:func:`pe_dense.data.world.write_world`);
2. ``stage1``: ``pe-dense train configs/paper_mini/clip_pe-mini_world.py`` (PE-Core in
   miniature: CLIP loss, PE-Mini vision + text towers from scratch) -> ``stage1/clip.pt``;
3. ``zeroshot``: ``pe-dense classify`` of the held-out single-object images against the 16
   "colour shape" labels, trained and random towers (chance 1/16);
4. ``sweep1``: ``pe-dense probe`` (linear segmentation mIoU and label-propagation J&F of every
   block of the stage-1 model);
5. ``stage2``: ``pe-dense distill-cache`` + ``pe-dense distill`` of
   ``configs/paper_mini/distill_pe-mini_world.py`` (PE-Spatial in miniature: student from
   stage 1, last layer -> stage 1's best intermediate block by the sweep, plus the ground-truth
   "perfect SAM" mask teacher) -> ``stage2/student.pt``;
6. ``sweep2``: the same probe on the student;
7. ``text``: ``pe-dense segment-text --eval-labels`` with each training-free recipe (maskclip,
   selfself) on the stage-1 and the random model, shape and colour prompts, and the learned
   bridge (``configs/paper_mini/bridge_pe-mini_world.py`` on the stage-1 towers);
8. ``figures``: layer curves before and after alignment, PCA pictures of the last layer.

Everything goes to ``--out`` (default ``work_dirs/paper_mini``): ``results.json`` (rewritten
after each stage, with each stage's seconds, commands and machine load; a rerun skips the stages
it records, ``--redo STAGE`` reruns one), ``summary.md``, ``layer_curves.png``, ``pca.png`` and
each command's own outputs. The configs the run used (the repository's, with the run's paths,
sizes and chosen layer written in) are in ``configs/``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "configs" / "paper_mini"
STAGES = ("world", "stage1", "zeroshot", "sweep1", "stage2", "sweep2", "text", "figures")
MODEL = "PE-Mini"
TEMPLATES = ("a {}", "a photo of a {}", "a small {}", "a large {}")

PROFILES: dict[str, dict[str, Any]] = {
    "full": dict(world=dict(image_size=96, train=30000, val=500, test=500, zeroshot=480,
                            clips=12, clip_frames=16),
                 stage1=dict(max_iters=2000, batch_size=64),
                 probe=dict(iters=300, batch_size=16, max_train=1000, max_eval=300),
                 stage2=dict(max_steps=800, batch_size=64, crop=64),
                 bridge=dict(max_iters=600), text_images=300),
    "tiny": dict(world=dict(image_size=64, train=24, val=8, test=8, zeroshot=16, clips=2,
                            clip_frames=4),
                 stage1=dict(max_iters=3, batch_size=8),
                 probe=dict(iters=3, batch_size=4, max_train=0, max_eval=0),
                 stage2=dict(max_steps=2, batch_size=4, crop=32),
                 bridge=dict(max_iters=2), text_images=4),
}


class Run:
    """The run's folder, profile and results (``results.json``, rewritten after each stage)."""

    def __init__(self, out: Path, profile: str, seed: int) -> None:
        self.out, self.profile_name, self.seed = out, profile, seed
        self.profile = PROFILES[profile]
        self.path = out / "results.json"
        self.results: dict[str, Any] = (json.loads(self.path.read_text()) if self.path.is_file()
                                        else {"profile": profile, "seed": seed, "stages": {}})
        if self.results.get("profile") != profile or self.results.get("seed") != seed:
            raise SystemExit(f"{self.path} is a {self.results.get('profile')} run with seed "
                             f"{self.results.get('seed')}: use another --out for a {profile} "
                             f"run with seed {seed}")
        self.commands: list[str] = []

    @property
    def world(self) -> Path:
        return self.out / "world"

    @property
    def size(self) -> int:
        return self.profile["world"]["image_size"]

    @property
    def clip(self) -> Path:
        return self.out / "stage1" / "clip.pt"

    @property
    def student(self) -> Path:
        return self.out / "stage2" / "student.pt"

    def stage(self, name: str) -> dict[str, Any]:
        return self.results["stages"][name]

    def save(self) -> None:
        from pe_dense.utils.io import atomic_write_text

        atomic_write_text(self.path, json.dumps(self.results, indent=1))


def pe_dense(run: Run, *argv: Any) -> None:
    """Run one ``pe-dense`` command in this process (printed first); a non-zero exit stops."""
    from pe_dense.cli.main import main

    args = [str(a) for a in argv]
    images = [a for a in args if a.endswith(".png")]
    elided = set(images[1:]) if len(images) > 4 else set()
    shown = [a for a in args if a not in elided]
    line = "pe-dense " + shlex.join(shown).replace(str(run.out), "$OUT")
    if len(shown) < len(args):
        line += f"  (and {len(args) - len(shown)} more images)"
    print(f"\n$ {line}", flush=True)
    run.commands.append(line)
    code = main(args)
    if code != 0:
        raise SystemExit(f"{line} exited with {code}")


def write_config(src: Path, dst: Path, **names: Any) -> Path:
    """``src`` with each top-level ``name = ...`` line set to ``repr(value)`` and its
    ``_base_`` paths made absolute, written to ``dst``."""
    text = src.read_text()
    for name, value in names.items():
        text, n = re.subn(rf"^{name} = .*$", f"{name} = {value!r}", text, count=1, flags=re.M)
        if n != 1:
            raise ValueError(f"{src} has no top-level '{name} = ...' line")

    def absolute(m: re.Match) -> str:
        return repr(str((src.parent / m.group(1)).resolve()))

    text = re.sub(r'^(_base_ = .*)$', lambda m: re.sub(r'"([^"]+)"', absolute, m.group(1)),
                  text, flags=re.M)
    dst.parent.mkdir(parents=True, exist_ok=True)
    dst.write_text(text)
    return dst


# ----------------------------------------------------------------------------- the stages
def stage_world(run: Run) -> dict[str, Any]:
    from pe_dense.data.world import write_world

    meta = write_world(run.world, seed=run.seed, **run.profile["world"])
    print(f"world: {meta['splits']} images, {meta['clips']} clips, held out {meta['heldout']}")
    return {"meta": meta}


def stage_stage1(run: Run) -> dict[str, Any]:
    p = run.profile["stage1"]
    cfg = write_config(CONFIGS / "clip_pe-mini_world.py", run.out / "configs" / "stage1.py",
                       world=f"{run.world}/", **p)
    work = run.out / "stage1"
    resume = ["--resume"] if (work / "last_checkpoint").is_file() else []
    pe_dense(run, "train", cfg, "--work-dir", work, *resume)
    return {"clip": str(run.clip), "curves": _scalars(work), **p}


def _scalars(work: Path) -> dict[str, list]:
    """Training loss and validation metrics per step from mmengine's scalars.json files
    (validation records carry no training step: they get the last one logged before them)."""
    curves: dict[str, list] = {}
    for path in sorted(work.glob("*/vis_data/scalars.json")):
        step = 0
        for line in path.read_text().splitlines():
            rec = json.loads(line)
            step = rec.get("iter", step)
            for key in ("loss", "acc_i2t", "retrieval/i2t_r1", "retrieval/t2i_r1",
                        "distill/layer_cos", "distill/mask_corr"):
                if key in rec:
                    curves.setdefault(key, []).append([step, rec[key]])
    return curves


def stage_zeroshot(run: Run) -> dict[str, Any]:
    import torch

    meta = run.stage("world")["meta"]
    truth = json.loads((run.world / "zeroshot" / "labels.json").read_text())
    labels = [f"{c} {s}" for c in meta["colours"] for s in meta["shapes"]]
    images = [run.world / "zeroshot" / "images" / t["file"] for t in truth]
    templates = _templates(run)
    out: dict[str, Any] = {"labels": labels, "templates": list(TEMPLATES),
                           "chance": 1 / len(labels), "images": len(images)}
    for name, weights in (("stage1", run.clip), ("random", None)):
        path = run.out / "zeroshot" / f"{name}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.manual_seed(run.seed)  # the random tower is the same on every run
        pe_dense(run, "classify", *images, "--model", MODEL,
                 *(["--weights", weights] if weights else []), "--labels", ",".join(labels),
                 "--templates", templates, "--topk", "1", "--json", path, "--device", "cpu")
        out[name] = _zeroshot_scores(json.loads(path.read_text()), truth)
    print(f"zero-shot accuracy: stage 1 {out['stage1']['accuracy']:.3f}, random "
          f"{out['random']['accuracy']:.3f}, chance {out['chance']:.3f}")
    return out


def _templates(run: Run) -> Path:
    """The prompt-template file that classify and segment-text read (:data:`TEMPLATES`)."""
    path = run.out / "templates.txt"
    path.write_text("\n".join(TEMPLATES) + "\n")
    return path


def _zeroshot_scores(predicted: list[dict], truth: list[dict]) -> dict[str, float]:
    hits: dict[str, list[bool]] = {"accuracy": [], "colour": [], "shape": [], "seen": [],
                                   "heldout": []}
    for p, t in zip(predicted, truth, strict=True):
        colour, shape = p["top"][0]["label"].split(" ", 1)
        right = (colour, shape) == (t["colour"], t["shape"])
        hits["accuracy"].append(right)
        hits["colour"].append(colour == t["colour"])
        hits["shape"].append(shape == t["shape"])
        hits["heldout" if t["heldout"] else "seen"].append(right)
    return {k: (sum(v) / len(v) if v else float("nan")) for k, v in hits.items()}


def _sweep(run: Run, name: str, weights: Path) -> dict[str, Any]:
    p, size = run.profile["probe"], run.size
    out = run.out / f"probe_{name}"
    pe_dense(run, "probe", "--backbones", MODEL, "--weights", weights, "--tasks", "seg,track",
             "--seg-data", run.world, "--seg-classes", 5, "--seg-ignore-index", 255,
             "--davis", run.world / "clips", "--short-side", size, "--track-short-side", size,
             "--max-frames", 0, "--iters", p["iters"], "--batch-size", p["batch_size"],
             "--max-train", p["max_train"], "--max-eval", p["max_eval"], "--seed", run.seed,
             "--device", "cpu", "--out", out)
    (encoder,) = json.loads((out / "probe.json").read_text())["encoders"]
    blocks = [int(b) for b in encoder["indices"]]
    per_block = {task: encoder["tasks"][task]["per_block"] for task in ("seg", "track")}
    return {"blocks": blocks,
            "seg_miou": [per_block["seg"][str(b)]["mIoU"] for b in blocks],
            "track_jf": [per_block["track"][str(b)]["J&F-Mean"] for b in blocks]}


def stage_sweep1(run: Run) -> dict[str, Any]:
    result = _sweep(run, "stage1", run.clip)
    blocks, seg = result["blocks"], result["seg_miou"]
    best = blocks[seg.index(max(seg))]
    inner = blocks[seg.index(max(seg[:-1]))]  # the best block before the last
    result.update(best_block=best, best_is_last=best == blocks[-1], teacher_layer=inner)
    print(f"stage 1: best block {best} (seg mIoU {max(seg):.3f}), last block {blocks[-1]} "
          f"({seg[-1]:.3f}); stage 2 aligns the last block to block {inner}")
    return result


def stage_stage2(run: Run) -> dict[str, Any]:
    p = dict(run.profile["stage2"])
    layer = run.stage("sweep1")["teacher_layer"]
    cfg = write_config(CONFIGS / "distill_pe-mini_world.py", run.out / "configs" / "stage2.py",
                       world=f"{run.world}/", stage1=str(run.clip), teacher_layer=layer,
                       cache_dir=str(run.out / "distill_cache"), base_size=run.size,
                       crop=p.pop("crop"), **p)
    pe_dense(run, "distill-cache", cfg)
    work = run.out / "stage2"
    resume = ["--resume"] if (work / "last_checkpoint").is_file() else []
    pe_dense(run, "distill", cfg, "--work-dir", work, *resume)
    return {"student": str(run.student), "teacher_layer": layer,
            "curves": _scalars(work), **run.profile["stage2"]}


def stage_sweep2(run: Run) -> dict[str, Any]:
    return _sweep(run, "stage2", run.student)


def _segment_text(run: Run, name: str, extra: list[Any], labels: str) -> dict[str, Any]:
    test = run.world / "test"
    images = sorted((test / "images").glob("*.png"))[:run.profile["text_images"]]
    out = run.out / "text" / name
    pe_dense(run, "segment-text", *images, *extra, "--short-side", run.size, "--eval-labels",
             test / labels, "--no-save", "--device", "cpu", "--out", out)
    metrics = json.loads((out / "metrics.json").read_text())
    return {"mIoU": metrics["metrics"]["mIoU"], "baseline_mIoU": metrics["baseline"]["mIoU"],
            "IoU": metrics["metrics"]["IoU"], "baseline_IoU": metrics["baseline"]["IoU"]}


def stage_text(run: Run) -> dict[str, Any]:
    import torch

    meta = run.stage("world")["meta"]
    vocab = {"shapes": (meta["classes"], "labels"),
             "colours": (meta["colour_classes"], "colours")}
    templates = _templates(run)
    out: dict[str, Any] = {}
    for model, weights in (("stage1", run.clip), ("random", None)):
        for recipe in ("maskclip", "selfself"):
            for kind, (classes, labels) in vocab.items():
                torch.manual_seed(run.seed)
                extra = ["--model", MODEL, *(["--weights", weights] if weights else []),
                         "--recipe", recipe, "--templates", templates,
                         "--prompts", ",".join(classes)]
                out[f"{model}/{recipe}/{kind}"] = _segment_text(
                    run, f"{model}_{recipe}_{kind}", extra, labels)
    cfg = write_config(CONFIGS / "bridge_pe-mini_world.py", run.out / "configs" / "bridge.py",
                       world=f"{run.world}/", stage1=str(run.clip), size=run.size,
                       **run.profile["bridge"])
    pe_dense(run, "train", cfg, "--work-dir", run.out / "bridge")
    out["stage1/bridge/shapes"] = _segment_text(
        run, "stage1_bridge_shapes", ["--bridge", run.out / "bridge" / "bridge.pth"], "labels")
    for key, m in out.items():
        print(f"{key:28s} mIoU {m['mIoU']:.3f} (image-independent baseline "
              f"{m['baseline_mIoU']:.3f})")
    return out


def stage_figures(run: Run) -> dict[str, Any]:
    from pe_dense.viz.plots import plot_curves

    s1, s2 = run.stage("sweep1"), run.stage("sweep2")
    panels = {}
    for key, title in (("seg_miou", "linear-probe segmentation mIoU"),
                       ("track_jf", "label-propagation J&F")):
        panels[title] = {label: (s["blocks"], s[key])
                         for label, s in (("stage 1 (contrastive)", s1),
                                          ("stage 2 (aligned)", s2))}
    curves = run.out / "layer_curves.png"
    plot_curves(panels, str(curves), xlabel="block (0-based)",
                title=f"PE-Mini: stage-2 teacher = stage-1 block {s1['teacher_layer']}")
    pca = _pca_figure(run, s1["teacher_layer"])
    return {"layer_curves": str(curves), "pca": str(pca)}


def _pca_figure(run: Run, layer: int, n: int = 4) -> Path:
    """Rows: test images | stage-1 last block | stage-1 block ``layer`` | student last block."""
    import numpy as np
    from PIL import Image

    from pe_dense.backbone.factory import create_backbone
    from pe_dense.data.images import read_rgb
    from pe_dense.utils.io import atomic_path
    from pe_dense.viz.pca import pca_picture

    stage1 = create_backbone(MODEL, weights=str(run.clip)).eval()
    student = create_backbone(MODEL, weights=str(run.student)).eval()
    rows = []
    for path in sorted((run.world / "test" / "images").glob("*.png"))[:n]:
        image = read_rgb(path)
        w = image.shape[1]
        parts = [image] + [pca_picture(m, image, b, short_side=run.size)[0][:, w:]
                           for m, b in ((stage1, -1), (stage1, layer), (student, -1))]
        rows.append(np.concatenate(parts, axis=1))
    out = run.out / "pca.png"
    picture = np.concatenate(rows, axis=0)
    big = Image.fromarray(picture).resize((picture.shape[1] * 2, picture.shape[0] * 2),
                                          Image.NEAREST)
    with atomic_path(out) as tmp:
        big.save(tmp)
    return out


STAGE_FUNCTIONS: dict[str, Callable[[Run], dict[str, Any]]] = {
    "world": stage_world, "stage1": stage_stage1, "zeroshot": stage_zeroshot,
    "sweep1": stage_sweep1, "stage2": stage_stage2, "sweep2": stage_sweep2,
    "text": stage_text, "figures": stage_figures}


# ----------------------------------------------------------------------------- the summary
def targets(results: dict[str, Any]) -> dict[str, Any]:
    """The issue's targets, measured (None where a stage has not run)."""
    st = results["stages"]
    out: dict[str, Any] = {}
    if "zeroshot" in st:
        out["zeroshot_accuracy_at_least_0.8"] = st["zeroshot"]["stage1"]["accuracy"] >= 0.8
    if "sweep1" in st and "sweep2" in st:
        s1, s2 = st["sweep1"]["seg_miou"], st["sweep2"]["seg_miou"]
        out["student_last_minus_stage1_last_mIoU"] = s2[-1] - s1[-1]
        out["student_last_minus_stage1_best_mIoU"] = s2[-1] - max(s1)
        # mIoU in percent (the probe's unit): 5 and 1 mIoU points
        out["student_last_5_above_stage1_last"] = s2[-1] - s1[-1] >= 5
        out["student_last_within_1_of_stage1_best"] = s2[-1] - max(s1) >= -1
        j1, j2 = st["sweep1"]["track_jf"], st["sweep2"]["track_jf"]
        out["student_last_minus_stage1_last_JF"] = j2[-1] - j1[-1]
        out["student_last_minus_stage1_best_JF"] = j2[-1] - max(j1)
    if "text" in st:
        ratios = {k: v["mIoU"] / max(v["baseline_mIoU"], 1e-9) for k, v in st["text"].items()
                  if k.startswith("stage1/") and k.endswith("/shapes") and "bridge" not in k}
        out["training_free_shapes_mIoU_over_baseline"] = ratios
        out["training_free_twice_baseline"] = any(r >= 2 for r in ratios.values())
    if len(st) == len(STAGES):
        out["minutes"] = sum(s["seconds"] for s in st.values()) / 60
        out["under_60_minutes"] = out["minutes"] < 60
    return out


def summary(results: dict[str, Any]) -> str:
    """A short Markdown summary of the stages run so far."""
    st = results["stages"]
    lines = [f"# The paper in miniature ({results['profile']} profile, seed {results['seed']})",
             "", "| stage | seconds | load at start | load at end |", "|---|---|---|---|"]
    lines += [f"| {n} | {s['seconds']:.0f} | {s['load'][0]} | {s['load'][1]} |"
              for n, s in st.items()]
    for name in ("sweep1", "sweep2"):
        if name in st:
            s = st[name]
            lines += ["", f"{name}:", "", "| block | seg mIoU | J&F |", "|---|---|---|"]
            lines += [f"| {b} | {m:.3f} | {j:.3f} |"
                      for b, m, j in zip(s["blocks"], s["seg_miou"], s["track_jf"], strict=True)]
    lines += ["", "targets:", "", "```", json.dumps(targets(results), indent=1), "```"]
    return "\n".join(lines) + "\n"


def run_stage(run: Run, name: str) -> None:
    print(f"\n=== {name} ===", flush=True)
    began, load = time.perf_counter(), os.getloadavg()[0]
    run.commands = []
    result = STAGE_FUNCTIONS[name](run)
    result.update(seconds=round(time.perf_counter() - began, 1), commands=run.commands,
                  load=[round(load, 2), round(os.getloadavg()[0], 2)])
    run.results["stages"][name] = result
    run.results["targets"] = targets(run.results)
    run.save()
    from pe_dense.utils.io import atomic_write_text

    atomic_write_text(run.out / "summary.md", summary(run.results))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="work_dirs/paper_mini", help="run folder")
    parser.add_argument("--tiny", action="store_true",
                        help="tiny sizes and a few iterations per stage (tests, seconds)")
    parser.add_argument("--seed", type=int, default=0, help="world seed")
    parser.add_argument("--stages", default=",".join(STAGES),
                        help=f"comma list, in order (default all: {','.join(STAGES)})")
    parser.add_argument("--redo", default="", help="comma list of stages to rerun")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads (default: OMP_NUM_THREADS, else all cores)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    stages = [s.strip() for s in args.stages.split(",") if s.strip()]
    redo = {s.strip() for s in args.redo.split(",") if s.strip()}
    unknown = sorted((set(stages) | redo) - set(STAGES))
    if unknown:
        raise SystemExit(f"unknown stages {unknown}: use {', '.join(STAGES)}")
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    run = Run(out, "tiny" if args.tiny else "full", args.seed)
    run.results["machine"] = {"cpu_count": os.cpu_count(), "torch_threads":
                              torch.get_num_threads(), "torch": torch.__version__}
    for name in stages:
        if name in run.results["stages"] and name not in redo:
            print(f"=== {name}: done ({run.stage(name)['seconds']:.0f} s), skipped ===")
            continue
        run_stage(run, name)
    print("\n" + summary(run.results))
    print(f"results: {run.path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
