"""Benchmark ``pe-dense predict`` against a bare loop of the model, and its peak memory.

**Speed** (default mode): a folder of ``--images`` real images (copied from
``../shared/data``: COCO, CamVid, NYU, DAVIS, video frames, natural images, taken round-robin
over the sources; reused with a ``_repK`` suffix when there are fewer) is predicted by

- ``bare_model``: the model's own ``predict`` on batches built beforehand from the decoded
  images (uint8 tensors padded as the Predictor pads them; detection: the test resize and
  collate done beforehand too), one image per forward: the model and nothing else;
- ``bare_predictor``: :meth:`Predictor.predict` on the decoded arrays (adds the tensor
  conversion, padding and the conversion of the output to numpy);
- ``predict_w<K>_{draw,nodraw}``: ``pe-dense predict CONFIG CKPT FOLDER --out DIR --workers K
  [--no-draw]`` run through :func:`pe_dense.cli.main` in this process: decoding (in K
  ``DataLoader`` workers), the forward, the result files, the drawings and the journal.

images/s of predict is its loop time (``summary.json`` ``seconds``: from the first batch
requested to the last input written, worker start-up included, model loading excluded); the
wall time of the whole command (config, model and checkpoint loading, the merge) is recorded
too. Each task's ratio is predict's images/s over the mean of its ``bare_model`` passes. The
passes run back to back, rotated each round (round 2 runs them in reverse) so that a change
of machine load hits both sides; the load average before and after each pass, the process's
and its workers' CPU seconds are recorded. Both models use random weights saved as a
checkpoint (``OUT/<task>/random.pth``), so their outputs mean nothing; detection runs with
``model.roi.score_thresh=0`` so that every image gets the full 100 detections with masks (what
a trained model's COCO-style output writes), not the empty output random weights give.

Tasks (``--tasks``): ``seg``: PE-Spatial-T16-512 linear probe
(``configs/seg/linear_pe-spatial-t16_ade20k-512.py``, 150 classes) run at 512: keep-ratio
resize into 512 x 512 (``model.test_scale=(512,512)``), whole-image inference, logits resized
back to the image. ``det``: PE-Spatial-T16 Mask R-CNN
(``configs/det/mask_rcnn_pe_spatial_t_coco.py``) at 512: backbone at 512 (one 32 x 32
window: global attention), long side resized to 512 and padded to 512 x 512.

**Memory** (``--memory``): ``pe-dense predict`` over ``--counts`` inputs (a ``.txt`` list
repeating the 20 images of a 64 px shapes set, ``tools/make_shapes_dataset.py``) with a random
PE-Test shapes detector (``configs/det/mask_rcnn_pe_test_shapes_tiny.py``), each run a fresh
process; peak RSS of the main process (``wait4``), of each ``DataLoader`` worker (``VmHWM``
polled from ``/proc``) and of their sum (polled). Runs with the config's score threshold and
with other ``--score-thresh`` values.

**PNG** (``--png DIR``): CPU time and size of the drawings under DIR re-encoded at zlib
levels 6 (PIL's default) and 1.

Results: a table on stdout and ``OUT/bench_predict.json`` (or ``bench_predict_memory.json``),
rewritten atomically after every pass, so an interrupted run keeps what it measured. Usage::

    OMP_NUM_THREADS=1 python tools/bench_predict.py --out work_dirs/bench_predict \\
        [--tasks seg det] [--images 200] [--workers 0 1 2] [--draw on off] [--rounds 2]
    OMP_NUM_THREADS=1 python tools/bench_predict.py --memory --out work_dirs/bench_predict_mem \\
        [--counts 100 1000] [--workers 0 2]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
# (folder under ../shared/data, glob of its RGB images): depth and label PNGs left out
SOURCES = (
    ("coco_tiny", "images/*/*.jpg"),
    ("camvid_val", "images/*.png"),
    ("nyu_mini", "image_*.png"),
    ("images", "*.*"),
    ("davis2017_first_frame", "images/*/*.jpg"),
    ("davis2016", "JPEGImages/480p/*/*.jpg"),
    ("video_frames", "bedroom/*.jpg"),
)
TASKS: dict[str, tuple[str, list[str]]] = {
    "seg": ("configs/seg/linear_pe-spatial-t16_ade20k-512.py",
            ["model.backbone.weights=None", "model.test_scale=(512,512)",
             "model.inference.mode=whole"]),
    "det": ("configs/det/mask_rcnn_pe_spatial_t_coco.py",
            ["model.backbone.weights=None", "model.backbone.image_size=512",
             "model.roi.score_thresh=0.0", "test_dataloader.collate_fn.square_size=512",
             "test_dataloader.dataset.pipeline.0.size=512",
             "test_dataloader.dataset.ann_file=None"]),
}
# the code measured (its state is recorded with the results)
PREDICT_FILES = ("pe_dense/cli/predict.py", "pe_dense/engine/predict_run.py",
                 "pe_dense/engine/predictor.py", "pe_dense/data/inputs.py",
                 "pe_dense/tasks/results.py", "pe_dense/tasks/detection/results.py",
                 "pe_dense/tasks/segmentation/results.py")
MEMORY_CONFIG = "configs/det/mask_rcnn_pe_test_shapes_tiny.py"
MEMORY_OPTIONS = ["model.backbone.weights=None", "test_dataloader.dataset.ann_file=None"]


# ----------------------------------------------------------------------------- shared helpers

def write_json(path: Path, data: Any) -> None:
    from pe_dense.utils.io import atomic_write_text

    atomic_write_text(path, json.dumps(data, indent=1) + "\n")


def machine() -> dict[str, Any]:
    """CPU model and count, thread settings, versions; the git commit and the modified predict
    files when the code runs from the repository (None for a copy, e.g. ``git archive``)."""
    import torch

    model = next((line.split(":", 1)[1].strip() for line in
                  Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), platform.processor())
    info: dict[str, Any] = {
        "cpu": model, "cpus": os.cpu_count(), "python": platform.python_version(),
        "torch": torch.__version__, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS"),
        "torch_threads": torch.get_num_threads(), "host": platform.node(),
        "commit": None, "predict_files_modified": None}

    def git(*words: str) -> str:
        return subprocess.run(["git", "-C", str(ROOT), *words], capture_output=True,
                              text=True).stdout.strip()

    top = git("rev-parse", "--show-toplevel")
    if top and Path(top).resolve() == ROOT:
        dirty = git("status", "--porcelain", "--", *PREDICT_FILES).splitlines()
        info.update(commit=git("rev-parse", "--short", "HEAD"),
                    predict_files_modified=[d[3:] for d in dirty if d.strip()])
    return info


def parse_options(options: list[str]) -> dict[str, Any]:
    """``KEY=VALUE`` strings -> the dict ``pe-dense --cfg-options`` makes of them."""
    from mmengine.config import DictAction

    parser = argparse.ArgumentParser()
    parser.add_argument("--o", nargs="+", action=DictAction)
    return dict(parser.parse_args(["--o", *options]).o)


def save_random_checkpoint(config: str, options: list[str], path: Path, seed: int = 0) -> None:
    """``{"state_dict": ...}`` of the config's model with seeded random weights."""
    import torch

    from pe_dense.engine.predictor import Predictor

    torch.manual_seed(seed)
    model = Predictor(config, None, device="cpu", cfg_options=parse_options(options)).model
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"state_dict": model.state_dict()}, path)


# ----------------------------------------------------------------------------- speed

def make_image_folder(folder: Path, count: int, data: Path = DATA) -> dict[str, Any]:
    """``count`` real images copied into ``folder`` as ``NNN_<source>_<name>``, round-robin
    over :data:`SOURCES`; reused (``_repK``) when there are fewer. Returns what it took."""
    lists = [sorted((data / name).glob(pattern)) for name, pattern in SOURCES]
    lists = [[p for p in found if p.is_file()] for found in lists]
    pool: list[tuple[str, Path]] = []
    for i in range(max(map(len, lists), default=0)):
        pool += [(name, found[i]) for (name, _), found in zip(SOURCES, lists, strict=True)
                 if i < len(found)]
    if not pool:
        raise FileNotFoundError(f"no images under {data}: the speed mode needs ../shared/data "
                                "(or --data)")
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    per_source: dict[str, int] = {}
    for k in range(count):
        name, src = pool[k % len(pool)]
        rep = f"_rep{k // len(pool) + 1}" if k >= len(pool) else ""
        shutil.copyfile(src, folder / f"{k:04d}_{name}_{src.stem}{rep}{src.suffix}")
        per_source[name] = per_source.get(name, 0) + 1
    return {"images": count, "distinct": min(count, len(pool)), "available": len(pool),
            "per_source": per_source,
            "bytes": sum(p.stat().st_size for p in folder.iterdir())}


class Meter:
    """Wall seconds, CPU seconds of this process and of its finished children (DataLoader
    workers), and the 1-minute load average before and after a pass."""

    def __enter__(self) -> Meter:
        import resource

        self.load_before = os.getloadavg()[0]
        self.self0 = resource.getrusage(resource.RUSAGE_SELF)
        self.kids0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        self.t0 = time.perf_counter()
        return self

    def __exit__(self, *exc: Any) -> None:
        import resource

        self.wall = time.perf_counter() - self.t0
        s1 = resource.getrusage(resource.RUSAGE_SELF)
        k1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        self.cpu_main = s1.ru_utime + s1.ru_stime - self.self0.ru_utime - self.self0.ru_stime
        self.cpu_workers = k1.ru_utime + k1.ru_stime - self.kids0.ru_utime - self.kids0.ru_stime
        self.load_after = os.getloadavg()[0]

    def record(self) -> dict[str, float]:
        return {"wall_s": round(self.wall, 3), "cpu_main_s": round(self.cpu_main, 2),
                "cpu_workers_s": round(self.cpu_workers, 2),
                "load_before": round(self.load_before, 2),
                "load_after": round(self.load_after, 2)}


class Task:
    """One task's model (random weights, saved), its pre-decoded images and pre-built batches."""

    def __init__(self, name: str, out: Path, images: list[Path]) -> None:
        import torch

        from pe_dense.data.images import read_rgb
        from pe_dense.engine.predictor import Predictor

        self.name = name
        self.config, self.options = TASKS[name]
        self.config = str(ROOT / self.config)
        self.checkpoint = out / name / "random.pth"
        save_random_checkpoint(self.config, self.options, self.checkpoint)
        cpu0 = time.process_time()
        self.predictor = Predictor(self.config, self.checkpoint, device="cpu",
                                   cfg_options=parse_options(self.options))
        self.load_cpu_s = round(time.process_time() - cpu0, 2)  # predict pays this too
        self.arrays = [read_rgb(p) for p in images]
        self.batches = [self._batch(a) for a in self.arrays]
        self.info = {"config": self.config, "cfg_options": self.options,
                     "checkpoint": str(self.checkpoint), "model_load_cpu_s": self.load_cpu_s,
                     "parameters": sum(p.numel() for p in self.predictor.model.parameters()),
                     "image_sizes": sorted({f"{a.shape[1]}x{a.shape[0]}" for a in self.arrays})}
        with torch.no_grad():
            self.bare_model(self.batches[:1])  # first-call set-up outside the timing
        self.info["outputs"] = self._describe(self.bare_model(self.batches[:1])[0])

    def _batch(self, image: Any) -> tuple[Any, list[dict[str, Any]]]:
        """The (1, 3, H, W) uint8 batch and samples the model's ``predict`` takes for one
        image, built as the Predictor builds them."""
        model = self.predictor.model
        if self.predictor.dense:
            from pe_dense.data.collate import pad_images
            from pe_dense.data.images import to_tensor

            tensor = to_tensor(image)
            size = (int(tensor.shape[-2]), int(tensor.shape[-1]))
            return pad_images([tensor], size_divisor=model.size_divisor), [{"size": size}]
        from pe_dense.data.collate import detection_collate
        from pe_dense.data.det_transforms import PackDetInputs, ResizeLongestSide

        results = {"image": image, "ori_size": image.shape[:2], "image_id": 0}
        if model.inputs.resize:
            results = ResizeLongestSide(model.inputs.resize)(results)
        batch = detection_collate([PackDetInputs()(results)], model.inputs.size_divisor,
                                  model.inputs.square_size)
        return batch["inputs"], batch["data_samples"]

    def bare_model(self, batches: list[tuple[Any, list[dict[str, Any]]]]) -> list[Any]:
        import torch

        model = self.predictor.model
        with torch.no_grad():
            return [model.predict(x, samples)[0] for x, samples in batches]

    def bare_predictor(self, arrays: list[Any]) -> list[Any]:
        return [self.predictor.predict([a])[0] for a in arrays]

    @staticmethod
    def _describe(result: Any) -> dict[str, Any]:
        return {k: list(v.shape) for k, v in result.items() if hasattr(v, "shape")}


def run_predict_pass(task: Task, folder: Path, out: Path, workers: int, draw: bool
                     ) -> dict[str, Any]:
    from pe_dense.cli import main

    if out.exists():
        shutil.rmtree(out)
    argv = ["predict", task.config, str(task.checkpoint), str(folder), "--out", str(out),
            "--workers", str(workers), "--batch-size", "1", "--device", "cpu",
            *([] if draw else ["--no-draw"]), "--cfg-options", *task.options]
    with Meter() as meter:
        code = main(argv)
    summary = json.loads((out / "summary.json").read_text())
    if code != 0 or summary["failed"]:
        raise RuntimeError(f"pe-dense {' '.join(argv)} exited {code}: {summary}")
    files = [p for p in out.rglob("*") if p.is_file()]
    return {"command": "pe-dense " + " ".join(argv), "images": summary["predicted"],
            "seconds": summary["seconds"], **meter.record(),
            "files": len(files), "bytes_written": sum(p.stat().st_size for p in files)}


def run_bare_pass(task: Task, kind: str) -> dict[str, Any]:
    with Meter() as meter:
        if kind == "bare_model":
            outputs = task.bare_model(task.batches)
        else:
            outputs = task.bare_predictor(task.arrays)
    record = meter.record()
    return {"images": len(outputs), "seconds": record["wall_s"], **record}


def speed_table(results: dict[str, Any]) -> str:
    head = ("task", "pass", "images", "loop s", "img/s", "x bare", "wall s", "cpu main",
            "cpu workers", "load before-after")
    rows = [head]
    for name, task in results["tasks"].items():
        base = task.get("bare_model_images_per_s")
        for p in task["passes"]:
            rate = p["images"] / p["seconds"]
            rows.append((name, p["pass"], str(p["images"]), f"{p['seconds']:.1f}",
                         f"{rate:.3f}", f"{rate / base:.3f}" if base else "-",
                         f"{p['wall_s']:.1f}", f"{p['cpu_main_s']:.1f}",
                         f"{p['cpu_workers_s']:.1f}",
                         f"{p['load_before']:.2f}-{p['load_after']:.2f}"))
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True))
                     for r in rows)


def summarise(task: dict[str, Any]) -> None:
    """Per-task images/s of each pass and the ratio to the mean bare-model rate."""
    bare = [p["images"] / p["seconds"] for p in task["passes"] if p["pass"] == "bare_model"]
    if not bare:
        return
    base = sum(bare) / len(bare)
    task["bare_model_images_per_s"] = round(base, 4)
    ratios: dict[str, list[float]] = {}
    for p in task["passes"]:
        p["images_per_s"] = round(p["images"] / p["seconds"], 4)
        p["ratio_to_bare_model"] = round(p["images_per_s"] / base, 4)
        ratios.setdefault(p["pass"], []).append(p["ratio_to_bare_model"])
    task["ratio_by_pass"] = {k: round(sum(v) / len(v), 4) for k, v in ratios.items()}


def speed(args: argparse.Namespace) -> int:
    import torch

    torch.set_num_threads(args.threads)
    out = args.out
    folder = out / "images"
    results: dict[str, Any] = {"mode": "speed", "started": time.strftime("%Y-%m-%d %H:%M:%S"),
                               "machine": machine(), "uptime_start": _uptime(),
                               "label": args.label, "code": _code(),
                               "input": make_image_folder(folder, args.images, args.data),
                               "folder": str(folder), "tasks": {}}
    images = sorted(folder.iterdir())
    passes = ["bare_model"] + (["bare_predictor"] if args.bare_predictor else [])
    passes += [f"predict_w{w}_{'draw' if d == 'on' else 'nodraw'}"
               for d in args.draw for w in args.workers]
    json_path = out / "bench_predict.json"
    for name in args.tasks:
        task = Task(name, out, images)
        entry = results["tasks"][name] = {**task.info, "passes": []}
        for r in range(args.rounds):
            order = passes if r % 2 == 0 else passes[::-1]
            if args.bare_last and r % 2 == 0:
                order = order + ["bare_model"]
            for p in order:
                if p.startswith("predict"):
                    _, w, d = p.split("_")
                    record = run_predict_pass(task, folder, out / name / p, int(w[1:]),
                                              d == "draw")
                else:
                    record = run_bare_pass(task, p)
                entry["passes"].append({"pass": p, "round": r + 1, **record})
                summarise(entry)
                results["uptime_now"] = _uptime()
                write_json(json_path, results)
                print(f"[{name}] {p} round {r + 1}: {record['images']} images in "
                      f"{record['seconds']:.1f} s, load {record['load_before']:.2f}-"
                      f"{record['load_after']:.2f}", flush=True)
        del task
    results["finished"] = time.strftime("%Y-%m-%d %H:%M:%S")
    results["uptime_end"] = _uptime()
    write_json(json_path, results)
    print(speed_table(results))
    print(f"written: {json_path}")
    return 0


def _code() -> str:
    """Where the pe_dense package measured was imported from."""
    import pe_dense

    return str(Path(pe_dense.__file__).parent)


def _uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def png_levels(folder: Path, levels: tuple[int, ...] = (6, 1)) -> dict[str, Any]:
    """CPU seconds and bytes of re-encoding the PNG drawings under ``folder`` (e.g. a run's
    ``vis/``) at zlib ``levels`` (PIL's default is 6)."""
    import io

    import numpy as np
    from PIL import Image

    arrays = []
    for path in sorted(folder.rglob("*.png")):
        with Image.open(path) as im:
            arrays.append(np.asarray(im.convert("RGB")))
    out: dict[str, Any] = {"folder": str(folder), "drawings": len(arrays)}
    for level in levels:
        cpu, size = 0.0, 0
        for a in arrays:
            image, buf = Image.fromarray(a), io.BytesIO()
            t0 = time.process_time()
            image.save(buf, format="PNG", compress_level=level)
            cpu += time.process_time() - t0
            size += buf.tell()
        out[f"level{level}"] = {"cpu_s": round(cpu, 2), "mib": round(size / 2**20, 1),
                                "ms_each": round(cpu / len(arrays) * 1e3, 1)}
        print(f"PNG level {level}: {len(arrays)} drawings, {cpu:.2f} CPU s "
              f"({cpu / len(arrays) * 1e3:.1f} ms each), {size / 2**20:.1f} MiB")
    return out


# ----------------------------------------------------------------------------- memory

def _children(pid: int) -> list[int]:
    """Direct children of ``pid`` (from ``/proc/*/stat``)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry))
    return found


def _status_kb(pid: int, field: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def measure_process(argv: list[str], env: dict[str, str], log: Path, done: Path,
                    poll: float = 0.05) -> dict[str, Any]:
    """Run ``argv``; peak RSS (MiB) of it (``wait4``: includes the ~110 MiB that torch's
    interpreter shutdown adds), of it until the file ``done`` appears (``VmHWM`` polled: the
    run's peak, merge included, without the shutdown), of each child (``VmHWM`` polled) and of
    the sum of their current RSS (polled), and the main process's RSS over time (``samples``:
    up to 200 ``[seconds, MiB]``; ``loop_rss_mib``: the median over the middle half)."""
    t0 = time.perf_counter()
    with open(log, "wb") as sink:  # a file, not a pipe: a full pipe would stall the run
        proc = subprocess.Popen(argv, env=env, stdout=sink, stderr=subprocess.STDOUT)
    workers: dict[int, int] = {}
    peak_sum = run_peak = 0
    samples: list[tuple[float, int]] = []
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        main_kb = _status_kb(proc.pid, "VmRSS")
        if not done.exists():
            run_peak = max(run_peak, _status_kb(proc.pid, "VmHWM"))
        total = main_kb
        for child in _children(proc.pid):
            workers[child] = max(workers.get(child, 0), _status_kb(child, "VmHWM"))
            total += _status_kb(child, "VmRSS")
        peak_sum = max(peak_sum, total)
        if main_kb:
            samples.append((time.perf_counter() - t0, main_kb))
        time.sleep(poll)
    proc.returncode = os.waitstatus_to_exitcode(status)
    output = log.read_text(errors="replace")
    n = len(samples)
    middle = sorted(kb for _, kb in samples[n // 4: max(3 * n // 4, n // 4 + 1)]) or [0]
    step = max(1, n // 200)
    return {"exit_code": proc.returncode, "wall_s": round(time.perf_counter() - t0, 2),
            "main_peak_rss_mib": round(usage.ru_maxrss / 1024, 1),
            "worker_peak_rss_mib": sorted(round(v / 1024, 1) for v in workers.values()),
            "sum_peak_rss_mib_polled": round(peak_sum / 1024, 1),
            "loop_rss_mib": round(middle[len(middle) // 2] / 1024, 1),
            "run_peak_rss_mib": round(run_peak / 1024, 1),
            "cpu_s": round(usage.ru_utime + usage.ru_stime, 2),
            "samples": [[round(t, 2), round(kb / 1024, 1)] for t, kb in samples[::step]],
            "output_tail": output.strip().splitlines()[-3:], "log": str(log)}


def memory(args: argparse.Namespace) -> int:
    out = args.out
    shapes = out / "shapes64"
    if not (shapes / "val").is_dir():
        subprocess.run([sys.executable, str(ROOT / "tools" / "make_shapes_dataset.py"),
                        str(shapes), "--size", "64", "--train", "16", "--val", "4"],
                       check=True, stdout=subprocess.DEVNULL)
    pool = sorted((shapes / "train").glob("*.png")) + sorted((shapes / "val").glob("*.png"))
    pool = pool or sorted(shapes.rglob("*.jpg"))
    config = str(ROOT / MEMORY_CONFIG)
    checkpoint = out / "random.pth"
    save_random_checkpoint(config, MEMORY_OPTIONS, checkpoint)
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads)}
    results: dict[str, Any] = {"mode": "memory", "started": time.strftime("%Y-%m-%d %H:%M:%S"),
                               "machine": machine(), "config": config,
                               "label": args.label, "code": _code(),
                               "pool": len(pool), "runs": []}
    json_path = out / "bench_predict_memory.json"
    for thresh in args.score_thresh:
        options = MEMORY_OPTIONS + ([f"model.roi.score_thresh={thresh}"] if thresh != "config"
                                    else [])
        for workers in args.workers:
            for count in args.counts:
                listing = out / f"inputs_{count}.txt"
                listing.write_text("".join(f"{pool[i % len(pool)].relative_to(out)}\n"
                                           for i in range(count)))  # relative to the list
                run_out = out / f"run_t{thresh}_w{workers}_n{count}"
                if run_out.exists():
                    shutil.rmtree(run_out)
                argv = [sys.executable, "-m", "pe_dense.cli.main", "predict", config,
                        str(checkpoint), str(listing), "--out", str(run_out), "--workers",
                        str(workers), "--device", "cpu", "--cfg-options", *options]
                record = {"inputs": count, "workers": workers, "score_thresh": thresh,
                          "load_before": round(os.getloadavg()[0], 2),
                          **measure_process(argv, env, out / f"{run_out.name}.log",
                                             run_out / "summary.json")}
                summary = json.loads((run_out / "summary.json").read_text())
                if record["exit_code"] != 0 or summary["predicted"] != count:
                    raise RuntimeError(f"{' '.join(argv)}: exit {record['exit_code']}, "
                                       f"{summary['predicted']} of {count} predicted")
                results_json = run_out / "results.json"
                record.update(predicted=summary["predicted"], seconds=summary["seconds"],
                              detections=len(json.loads(results_json.read_text())),
                              results_json_mib=round(results_json.stat().st_size / 2**20, 2),
                              load_after=round(os.getloadavg()[0], 2),
                              command=" ".join(argv[1:]))
                results["runs"].append(record)
                write_json(json_path, results)
                print(f"score_thresh {thresh} workers {workers} inputs {count}: main peak "
                      f"{record['main_peak_rss_mib']} MiB (until summary.json "
                      f"{record['run_peak_rss_mib']}, loop {record['loop_rss_mib']}), workers "
                      f"{record['worker_peak_rss_mib']} MiB, sum "
                      f"{record['sum_peak_rss_mib_polled']} MiB, {record['detections']} "
                      f"detections, {record['wall_s']} s",
                      flush=True)
    results["finished"] = time.strftime("%Y-%m-%d %H:%M:%S")
    write_json(json_path, results)
    print(f"written: {json_path}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="work folder (recreated parts)")
    parser.add_argument("--threads", type=int, default=int(os.environ.get("OMP_NUM_THREADS",
                                                                          "1")),
                        help="torch threads of the main process (default $OMP_NUM_THREADS or 1)")
    parser.add_argument("--workers", type=int, nargs="+", default=None,
                        help="--workers values of predict (speed: 0 1 2; memory: 0 2)")
    parser.add_argument("--memory", action="store_true", help="peak memory mode")
    parser.add_argument("--png", type=Path, default=None, metavar="DIR",
                        help="only time re-encoding the PNGs under DIR (drawings) at zlib "
                        "levels 6 and 1")
    parser.add_argument("--label", default="", help="a note stored with the results (e.g. the "
                        "code version measured)")
    parser.add_argument("--data", type=Path, default=DATA, help="the real images' folder "
                        "(default %(default)s)")
    speed_group = parser.add_argument_group("speed")
    speed_group.add_argument("--tasks", nargs="+", choices=sorted(TASKS), default=["seg", "det"])
    speed_group.add_argument("--images", type=int, default=200)
    speed_group.add_argument("--draw", nargs="+", choices=("on", "off"), default=["off", "on"])
    speed_group.add_argument("--rounds", type=int, default=1,
                             help="repeat the passes (odd rounds in order, even reversed)")
    speed_group.add_argument("--no-bare-predictor", dest="bare_predictor",
                             action="store_false", help="skip the Predictor.predict loop")
    speed_group.add_argument("--no-bare-last", dest="bare_last", action="store_false",
                             help="do not repeat bare_model at the end of odd rounds")
    mem = parser.add_argument_group("memory")
    mem.add_argument("--counts", type=int, nargs="+", default=[100, 1000])
    mem.add_argument("--score-thresh", nargs="+", default=["config"],
                     help="'config' (the config's) and/or values for model.roi.score_thresh")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    if args.png:
        write_json(args.out / "bench_predict_png.json", png_levels(args.png))
        return 0
    if args.memory:
        args.workers = args.workers if args.workers is not None else [0, 2]
        return memory(args)
    args.workers = args.workers if args.workers is not None else [0, 1, 2]
    return speed(args)


if __name__ == "__main__":
    sys.exit(main())
