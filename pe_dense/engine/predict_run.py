"""``pe-dense predict`` over many inputs: decoding in ``DataLoader`` workers, the task's result
files, drawings, resumable, sharded over ``torchrun`` processes.

Output folder layout (``out``):

- ``pred/<key>.*``: per-input result files (segmentation label maps, depth PNGs, ...), and the
  task's merged files (detection: ``results.json``, ``images.json``), written by the task's
  :class:`~pe_dense.tasks.results.ResultWriter`;
- ``vis/<key>.png``: drawn predictions (``draw=False`` skips them); ``vis/<video>.mp4``: the
  drawn frames of each video input;
- ``records/rank<r>.jsonl``: a journal, one JSON line per finished or failed input (what a
  resumed run and the final merge read; a torn last line is ignored);
- ``failed.txt``: ``<source>\\t<reason>`` per input that could not be predicted;
- ``summary.json``: counts, speed, the files written.

Every file is written atomically; the journal is appended and flushed line by line. With
``skip_existing`` an input whose journal record and files exist is not predicted again. Under
``torchrun`` each process takes inputs ``rank, rank + world, ...`` and process 0 merges.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pe_dense.data.images import ImageLimits
from pe_dense.data.inputs import InputDataset, InputFrame, collate_list
from pe_dense.engine.predictor import Predictor
from pe_dense.tasks.results import PredictItem
from pe_dense.utils.io import atomic_path, atomic_write_text

__all__ = ["PredictOptions", "PredictSummary", "run_predict", "Journal", "coco_ids"]

log = logging.getLogger(__name__)

VIS_PNG_LEVEL = 1  # zlib level of the vis/ drawings


@dataclass
class PredictOptions:
    """How a run predicts and what it writes (see ``pe-dense predict --help``)."""

    batch_size: int = 1
    workers: int = 2
    draw: bool = True
    score_threshold: float = 0.5
    skip_existing: bool = False
    slice_size: int = 0
    overlap: float = 0.2
    limits: ImageLimits | None = None
    writer_options: dict[str, Any] = field(default_factory=dict)
    ann_file: str | None = None
    video_fps: float = 10.0


@dataclass
class PredictSummary:
    """``total`` inputs; ``predicted`` now, ``skipped`` (done before), ``failed`` (source,
    reason) pairs of this process; ``seconds`` of the prediction loop; ``files``: merged files
    written (process 0)."""

    total: int
    predicted: int = 0
    skipped: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)
    seconds: float = 0.0
    files: list[str] = field(default_factory=list)

    @property
    def images_per_second(self) -> float:
        return self.predicted / self.seconds if self.seconds > 0 else 0.0


def _dist() -> tuple[int, int]:
    """(rank, world size) of an initialised process group, else (0, 1)."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


def _barrier() -> None:
    if _dist()[1] > 1:
        torch.distributed.barrier()


class Journal:
    """The run's ``records/rank<r>.jsonl`` files: appended one line per input, read back
    across ranks (the last line of a key wins; torn lines are skipped)."""

    def __init__(self, out: Path, rank: int) -> None:
        self.folder = out / "records"
        self.path = self.folder / f"rank{rank}.jsonl"

    def reset(self) -> None:
        """Start a fresh run: drop every rank's journal."""
        for old in self.folder.glob("rank*.jsonl"):
            old.unlink()

    def append(self, record: dict[str, Any]) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps(record, separators=(",", ":")) + "\n")
            f.flush()

    def latest(self) -> dict[str, tuple[Path, int, bool]]:
        """key -> (journal, byte offset, ok) of its last complete line, over every rank."""
        found: dict[str, tuple[Path, int, bool]] = {}
        for path in sorted(self.folder.glob("rank*.jsonl")):
            offset = 0
            with open(path, "rb") as f:
                for line in f:
                    if line.endswith(b"\n"):
                        try:
                            rec = json.loads(line)
                        except json.JSONDecodeError:
                            rec = None
                        if isinstance(rec, dict) and "key" in rec:
                            found[rec["key"]] = (path, offset, "error" not in rec)
                    offset += len(line)
        return found

    @staticmethod
    def read(path: Path, offset: int) -> dict[str, Any]:
        with open(path, "rb") as f:
            f.seek(offset)
            return json.loads(f.readline())


class _Records:
    """The finished inputs' records in input order, read lazily from the journals (so merging
    a million inputs never holds them all); iterable more than once."""

    def __init__(self, latest: dict[str, tuple[Path, int, bool]], order: dict[str, int]) -> None:
        self.where = sorted(((order[k], p, o) for k, (p, o, ok) in latest.items()
                             if ok and k in order), key=lambda t: t[0])

    def __len__(self) -> int:
        return len(self.where)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for _, path, offset in self.where:
            yield Journal.read(path, offset)


def coco_ids(frames: Sequence[InputFrame], ann_file: str | None, strict: bool
             ) -> tuple[list[int], list[int] | None]:
    """Image ids for ``frames`` and category ids for the model's labels.

    With a COCO annotation file, images are matched by file name (the longest trailing part of
    the input path that equals a ``file_name``) and categories are its own, sorted by id (the
    order pe_dense's COCO dataset gives labels). Without one, or (``strict`` False) when some
    input is not in it, ids follow the input order (1, 2, ...) and categories are None.
    ``strict``: an input missing from the file is a ``ValueError`` naming it."""
    own = list(range(1, len(frames) + 1))
    if not ann_file:
        return own, None
    from pe_dense.utils.coco import load_coco_json

    data = load_coco_json(ann_file)
    by_name = {img["file_name"]: int(img["id"]) for img in data.get("images", [])}
    ids = []
    for frame in frames:
        parts = Path(frame.path).parts
        match = next((by_name[n] for n in ("/".join(parts[i:]) for i in range(len(parts)))
                      if n in by_name), None) if frame.frame is None else None
        if match is None:
            if strict:
                raise ValueError(f"{frame.source} is not an image of {ann_file} (matched by "
                                 "file name); drop --ann-file to number the inputs in order")
            log.info("%s is not in %s: numbering the inputs in order", frame.source, ann_file)
            return own, None
        ids.append(match)
    cats = sorted(data.get("categories", []), key=lambda c: c["id"])
    return ids, [int(c["id"]) for c in cats]


def _done(latest: dict[str, tuple[Path, int, bool]], item: PredictItem,
          files: Callable[[PredictItem], list[Path]]) -> bool:
    hit = latest.get(item.key)
    return bool(hit and hit[2] and all(p.is_file() for p in files(item)))


def _loader(dataset: InputDataset, indices: list[int], opts: PredictOptions) -> Any:
    subset = torch.utils.data.Subset(dataset, indices)
    return torch.utils.data.DataLoader(
        subset, batch_size=opts.batch_size, shuffle=False, num_workers=opts.workers,
        collate_fn=collate_list, persistent_workers=False,
        prefetch_factor=2 if opts.workers else None)


class _Run:
    """One process's share of a predict run (see :func:`run_predict`)."""

    def __init__(self, predictor: Predictor, frames: Sequence[InputFrame], out: Path,
                 opts: PredictOptions) -> None:
        self.predictor, self.frames, self.out, self.opts = predictor, list(frames), out, opts
        self.rank, self.world = _dist()
        desc = predictor.description
        if desc.writer is None:
            raise ValueError(f"task {desc.name!r} has no result writer in its TaskDescription")
        strict = opts.ann_file is not None and opts.writer_options.get("explicit_ann", False)
        self.image_ids, cat_ids = coco_ids(self.frames, opts.ann_file, strict) \
            if desc.name == "detection" else (list(range(1, len(self.frames) + 1)), None)
        wopts = {k: v for k, v in opts.writer_options.items() if k != "explicit_ann"}
        if desc.name == "detection":
            wopts.update(cat_ids=cat_ids, own_ids=cat_ids is None)
        self.writer = desc.writer(out, predictor.class_names, **wopts)
        self.journal = Journal(out, self.rank)
        self.summary = PredictSummary(total=len(self.frames))

    def item(self, index: int, size: tuple[int, int] = (0, 0)) -> PredictItem:
        f = self.frames[index]
        return PredictItem(index, f.key, f.source, self.image_ids[index], size)

    def todo(self) -> list[int]:
        mine = list(range(self.rank, len(self.frames), self.world))
        if not self.opts.skip_existing:
            return mine
        latest = self.journal.latest()
        left = [i for i in mine if not _done(latest, self.item(i), self._files)]
        self.summary.skipped = len(mine) - len(left)
        return left

    def _files(self, item: PredictItem) -> list[Path]:
        files = self.writer.files(item)
        return files + [self._vis_path(item)] if self.opts.draw else files

    def _vis_path(self, item: PredictItem) -> Path:
        return self.out / "vis" / f"{item.key}.png"

    def _predict(self, images: list[np.ndarray]) -> list[Any]:
        raw = bool(self.opts.writer_options.get("save_logits"))
        if self.opts.slice_size:
            return [self.predictor.predict_sliced(im, self.opts.slice_size, self.opts.overlap,
                                                  raw=raw) for im in images]
        return self.predictor.predict(images, raw=raw) if raw else self.predictor.predict(images)

    def _fail(self, index: int, reason: str) -> None:
        frame = self.frames[index]
        self.summary.failed.append((frame.source, reason))
        self.journal.append({"key": frame.key, "source": frame.source, "error": reason})
        log.warning("skipped %s", reason if frame.source in reason else
                    f"{frame.source}: {reason}")

    def _finish_one(self, index: int, image: np.ndarray, pred: Any) -> None:
        from PIL import Image

        item = self.item(index, (int(image.shape[0]), int(image.shape[1])))
        record = self.writer.write(item, pred)
        if self.opts.draw:
            drawn = self.predictor.draw(image, pred, self.opts.score_threshold)
            with atomic_path(self._vis_path(item)) as tmp:
                # zlib level 1: about 4x faster than PIL's default 6 on a drawn photo, files
                # about 10 % larger (docs/benchmarks.md, "Inference on your data")
                Image.fromarray(drawn).save(tmp, compress_level=VIS_PNG_LEVEL)
        self.journal.append({"key": item.key, "source": item.source, "index": index,
                             "image_id": item.image_id, "size": list(item.size),
                             "weights": self.predictor.weights, **record})
        self.summary.predicted += 1

    def step(self, batch: list[dict[str, Any]]) -> None:
        good = []
        for entry in batch:
            if entry["error"]:
                self._fail(entry["index"], entry["error"])
            else:
                good.append(entry)
        if not good:
            return
        try:
            preds = self._predict([e["image"] for e in good])
        except (ValueError, RuntimeError) as exc:
            if len(good) > 1:  # find the bad one(s): one at a time
                for e in good:
                    self.step([e])
                return
            self._fail(good[0]["index"], f"the model failed on it: {str(exc).splitlines()[0]}")
            return
        for e, pred in zip(good, preds, strict=True):
            try:
                self._finish_one(e["index"], e["image"], pred)
            except (ValueError, OSError) as exc:
                self._fail(e["index"], f"writing its results failed: {exc}")


def _write_videos(out: Path, frames: Sequence[InputFrame], fps: float) -> list[Path]:
    """``vis/<video>.mp4`` from the drawn frames ``vis/<video>/<frame>.png`` of each video
    input (frames resized to the first one's size; missing frames left out)."""
    from PIL import Image

    from pe_dense.data.video import VideoWriter

    videos: dict[str, list[InputFrame]] = {}
    for f in frames:
        if f.video_key is not None:
            videos.setdefault(f.video_key, []).append(f)
    written = []
    for key, members in videos.items():
        paths = [out / "vis" / f"{f.key}.png" for f in members]
        paths = [p for p in paths if p.is_file()]
        if not paths:
            continue
        target = out / "vis" / f"{key}.mp4"
        with VideoWriter(target, fps=fps) as writer:
            size = None
            for p in paths:
                with Image.open(p) as im:
                    im = im.convert("RGB")
                    size = size or (im.width - im.width % 2, im.height - im.height % 2)
                    writer.write(np.asarray(im.resize(size) if im.size != size else im))
        written.append(target)
    return written


def run_predict(predictor: Predictor, frames: Sequence[InputFrame], out: str | os.PathLike,
                opts: PredictOptions | None = None,
                progress: Callable[[int], Any] | None = None) -> PredictSummary:
    """Predict every input of ``frames`` (this process's share under ``torchrun``), write the
    task's result files, drawings, ``failed.txt`` and ``summary.json`` into ``out`` (see the
    module docstring). ``progress(n)`` is called after each batch with its size. Returns this
    process's summary (with the merged files on process 0)."""
    opts = opts or PredictOptions()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    run = _Run(predictor, frames, out, opts)
    if not opts.skip_existing and run.rank == 0:
        run.journal.reset()
    _barrier()
    todo = run.todo()
    if progress is not None and run.summary.skipped:
        progress(run.summary.skipped)
    start = time.perf_counter()
    for batch in _loader(InputDataset(frames, opts.limits), todo, opts):
        run.step(batch)
        if progress is not None:
            progress(len(batch))
    run.summary.seconds = time.perf_counter() - start
    _barrier()
    if run.rank == 0:
        run.summary.files = [str(p) for p in _merge(run, opts)]
    _barrier()
    return run.summary


def _merge(run: _Run, opts: PredictOptions) -> list[Path]:
    """Process 0: the writer's merged files, the videos, ``failed.txt`` and ``summary.json``
    from every process's journal."""
    latest = run.journal.latest()
    order = {f.key: i for i, f in enumerate(run.frames)}
    records = _Records(latest, order)
    written = list(run.writer.finish(records))
    if opts.draw:
        written += _write_videos(run.out, run.frames, opts.video_fps)
    failed = []
    for key, (path, offset, ok) in sorted(latest.items(), key=lambda kv: order.get(kv[0], -1)):
        if not ok and key in order:
            rec = Journal.read(path, offset)
            failed.append(f"{rec['source']}\t{rec['error']}")
    run.summary.failed = [tuple(line.split("\t", 1)) for line in failed]  # every process's
    failed_txt = run.out / "failed.txt"
    if failed:
        written.append(atomic_write_text(failed_txt, "\n".join(failed) + "\n"))
    elif failed_txt.exists():
        failed_txt.unlink()
    summary = {"inputs": len(run.frames), "predicted": len(records), "failed": len(failed),
               "task": run.predictor.description.name, "weights": run.predictor.weights,
               "random_weights": run.predictor.random_weights,
               "seconds": round(run.summary.seconds, 3), "processes": run.world,
               "files": [str(p.relative_to(run.out)) for p in written]}
    written.append(atomic_write_text(run.out / "summary.json", json.dumps(summary, indent=1)))
    return written
