"""What a ``pe-dense train`` / ``test`` run prints: one screen by default, everything in the log.

Short console (the CLI's default): a header (model, parameter count, data sizes, device, work
dir, log file), one line per log interval (iteration, loss, lr, it/s, ETA), evaluation results
as a compact table, the checkpoints as they are written, and a closing summary (best metric,
checkpoints, skipped batches and samples, where the full log is). mmengine's environment dump,
config and hook table, its per-iteration lines and pe_dense's own INFO records go to the log
file in the work dir only; warnings and errors still reach the console. ``verbose=True`` (``pe-dense
--verbose train``) keeps mmengine's full console output (the header and summary are added).

The console lines are records of the run's mmengine logger marked ``console`` (so they are in
the log file too); :func:`attach` installs the filters on the logger's handlers.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mmengine.hooks import Hook

from pe_dense.engine.registry import HOOKS

__all__ = ["ConsoleHook", "attach", "detach", "say", "metrics_table", "main_metrics",
           "describe_model"]

_MARK = "pe_dense_console"
_LIBRARY = logging.getLogger("pe_dense")


def say(runner: Any, message: str) -> None:
    """A console line of the run (also written to its log file)."""
    runner.logger.info(message, extra={_MARK: True})


# mmengine warnings that say nothing to act on: its own deprecated file client (raised inside
# its CheckpointHook whatever the config) and the skip of seen batches on resume (the console
# says it in the resume line).
_FILE_ONLY = ("deprecated in future", "Advance dataloader")


class _ShortFilter(logging.Filter):
    """Console lines, warnings and errors (less :data:`_FILE_ONLY`); the rest to the log file."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, _MARK, False):
            return True
        text = str(record.msg)
        return record.levelno >= logging.WARNING and not any(n in text for n in _FILE_ONLY)


class _PlainConsole(logging.Formatter):
    """Console lines as they are; mmengine's other records in its own format."""

    def __init__(self, fallback: logging.Formatter | None) -> None:
        super().__init__()
        self.fallback = fallback or logging.Formatter("%(levelname)s %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        if getattr(record, _MARK, False):
            return record.getMessage()
        return self.fallback.format(record)


def attach(runner: Any, verbose: bool) -> None:
    """Set up the run's console: short (unless ``verbose``) on the mmengine logger's stream
    handler, plain console lines, and pe_dense's library records in the run's log file too (in
    short mode their INFO records go only there)."""
    stream = [h for h in runner.logger.handlers if not isinstance(h, logging.FileHandler)]
    files = [h for h in runner.logger.handlers if isinstance(h, logging.FileHandler)]
    for handler in stream:
        handler.setFormatter(_PlainConsole(handler.formatter))
        if not verbose:
            handler.addFilter(_ShortFilter())
    state: dict[str, Any] = {"handlers": list(files), "propagate": _LIBRARY.propagate}
    for handler in files:
        _LIBRARY.addHandler(handler)
    if not verbose and files:
        # Library INFO (e.g. the COCO table, printed again by this module) to the file only.
        console = logging.StreamHandler()
        console.setLevel(logging.WARNING)
        root = logging.getLogger().handlers
        console.setFormatter(root[0].formatter if root and root[0].formatter else
                             logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        _LIBRARY.addHandler(console)
        _LIBRARY.propagate = False
        state["handlers"].append(console)
        if _LIBRARY.level == logging.NOTSET or _LIBRARY.level > logging.INFO:
            state["level"] = _LIBRARY.level
            _LIBRARY.setLevel(logging.INFO)
    runner._console_state = state


def detach(runner: Any) -> None:
    """Undo :func:`attach` for the library logger (the run's own logger stays as it is)."""
    state = getattr(runner, "_console_state", None)
    if not state:
        return
    for handler in state["handlers"]:
        _LIBRARY.removeHandler(handler)
    _LIBRARY.propagate = state["propagate"]
    if "level" in state:
        _LIBRARY.setLevel(state["level"])
    runner._console_state = None


def log_file(runner: Any) -> str | None:
    """The run's log file (mmengine's, in the work dir's time-stamped folder)."""
    for handler in runner.logger.handlers:
        if isinstance(handler, logging.FileHandler):
            return handler.baseFilename
    return None


# ----------------------------------------------------------------------------- text

def describe_model(model_cfg: Mapping[str, Any] | None, model: Any = None) -> str:
    """``"MaskRCNN with PE-Test at 256 px, 3.4M parameters"`` from a config's ``model``
    (and the built model, for the parameter count)."""
    model_cfg = model_cfg or {}
    kind = str(model_cfg.get("type") or type(model).__name__).rsplit(".", 1)[-1]
    text = kind
    backbone = model_cfg.get("backbone") or model_cfg.get("student")
    if isinstance(backbone, Mapping):
        name = backbone.get("name") or backbone.get("model")
        size = backbone.get("image_size")
        if isinstance(name, str):
            text += f" with {name}" + (f" at {size} px" if isinstance(size, int) else "")
    if model is not None:
        total = sum(p.numel() for p in model.parameters())
        trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
        text += f", {_count(total)} parameters"
        if trainable != total:
            text += f" ({_count(trainable)} trained)"
    return text


def _count(n: int) -> str:
    return f"{n / 1e9:.2f}B" if n >= 1e9 else f"{n / 1e6:.1f}M" if n >= 1e5 else str(n)


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def _value(v: Any) -> str:
    if not isinstance(v, (int, float)) or isinstance(v, bool):
        return str(v)
    if v == -1 or (isinstance(v, float) and math.isnan(v)):
        return "-"  # COCO's "no such objects"
    return f"{v:.4f}" if abs(v) < 10 else f"{v:.2f}"


def metrics_table(metrics: Mapping[str, Any]) -> list[str]:
    """Metrics as a compact table: ``coco/bbox_AP``, ``coco/bbox_AP50`` ... become a row
    ``coco/bbox`` with columns ``AP AP50 ...``; metrics without such siblings share one line."""
    heads: dict[tuple[str, str], int] = {}
    for key in metrics:
        prefix, _, name = key.rpartition("/")
        head = (prefix, name.split("_", 1)[0])
        heads[head] = heads.get(head, 0) + 1
    rows: dict[str, dict[str, Any]] = {}
    singles: dict[str, Any] = {}
    for key, value in metrics.items():
        prefix, _, name = key.rpartition("/")
        head, _, rest = name.partition("_")
        if rest and heads[(prefix, head)] > 1:
            rows.setdefault(f"{prefix}/{head}" if prefix else head, {})[rest] = value
        else:
            singles[key] = value
    lines = []
    if rows:
        columns = list(dict.fromkeys(c for cols in rows.values() for c in cols))
        width = max(len(r) for r in rows)
        lines.append("  " + " " * width + "".join(f"{c:>8}" for c in columns))
        lines += [f"  {row:<{width}}" + "".join(
            f"{_value(cols[c]) if c in cols else '':>8}" for c in columns)
            for row, cols in rows.items()]
    if singles:
        lines.append("  " + "  ".join(f"{k} {_value(v)}" for k, v in singles.items()))
    return lines


def main_metrics(metrics: Mapping[str, Any], limit: int = 4) -> str:
    """The first metric of each family (``coco/bbox_AP``, ``coco/segm_AP`` ...) on one line."""
    seen: set[str] = set()
    picked = []
    for key, value in metrics.items():
        prefix, _, name = key.rpartition("/")
        family = (prefix, name.split("_", 1)[0])
        if family in seen:
            continue
        seen.add(family)
        picked.append(f"{key} {_value(value)}")
    return "  ".join(picked[:limit])


# ----------------------------------------------------------------------------- the hook

@HOOKS.register_module()
class ConsoleHook(Hook):
    """The short console of :mod:`pe_dense.engine.console` (added by ``build_runner``).

    ``interval``: iterations per progress line (default: the LoggerHook's interval, raised so
    that a run prints at most 20 of them). Evaluations during training print one line of main
    metrics; the last one (and ``pe-dense test``) the whole table.
    """

    priority = "HIGH"  # progress lines before the checkpoint hook's lines

    def __init__(self, interval: int | None = None) -> None:
        self.interval = interval
        self.best: tuple[str, float, int] | None = None
        self.start = time.perf_counter()
        self.iter_start: float | None = None  # the first iteration's start (rates, ETA)
        self.window: list[float] = []
        self.first_iter = 0
        self.announced = False

    # -- train
    def announce(self, runner: Any) -> None:
        """The first lines of a training run (model, device, work dir, log file): called by the
        runner before it builds the data, so they come before the datasets' own messages."""
        self.announced = True
        say(runner, f"{_name(runner)}: {describe_model(runner.cfg.get('model'), runner.model)}"
                    f" on {_device(runner)}")
        say(runner, f"work dir {runner.work_dir}; full log {log_file(runner)}")

    def before_train(self, runner: Any) -> None:
        if self.interval is None:
            logger = (runner.cfg.get("default_hooks") or {}).get("logger") or {}
            interval = int(logger.get("interval", 50)) if isinstance(logger, dict) else 50
            self.interval = max(interval, math.ceil(runner.max_iters / 20))
        self.start, self.iter_start = time.perf_counter(), None
        self.first_iter = runner.iter
        if not self.announced:
            self.announce(runner)
        say(runner, _data_line(runner))
        resumed = getattr(runner, "resumed_from", None)
        if resumed:
            skip = (f" (the data loader first skips the {runner.iter} batches already trained "
                    "on)" if 0 < runner.iter < runner.max_iters else "")
            say(runner, f"resumed from {resumed} at iteration {runner.iter}{skip}")
        elif runner._resume:
            say(runner, f"--resume: no checkpoint in {runner.work_dir}; starting at iteration 0")
        if runner.iter >= runner.max_iters:
            say(runner, f"nothing to train: the checkpoint is at iteration {runner.iter} and "
                        f"max_iters is {runner.max_iters} (raise train_cfg.max_iters to go on)")

    def before_train_iter(self, runner: Any, batch_idx: int, data_batch: Any = None) -> None:
        if self.iter_start is None:  # after a resume's skip over the batches already seen
            self.iter_start = time.perf_counter()

    def after_train_iter(self, runner: Any, batch_idx: int, data_batch: Any = None,
                         outputs: Mapping[str, Any] | None = None) -> None:
        if outputs and "loss" in outputs:
            value = outputs["loss"]
            loss = float(value.detach() if hasattr(value, "detach") else value)
            if math.isfinite(loss):
                self.window.append(loss)
        done = runner.iter + 1
        if done % (self.interval or 50) and done != runner.max_iters:
            return
        now = time.perf_counter()
        rate = (done - self.first_iter) / max(now - (self.iter_start or self.start), 1e-9)
        eta = (runner.max_iters - done) / max(rate, 1e-9)
        loss = f"loss {sum(self.window) / len(self.window):.4f}" if self.window else "loss -"
        lr = runner.optim_wrapper.get_lr()
        lr = next(iter(lr.values()))[0] if isinstance(lr, dict) and lr else float("nan")
        width = len(str(runner.max_iters))
        say(runner, f"iter {done:>{width}}/{runner.max_iters}  {loss}  lr {lr:.2e}  "
                    f"{rate:.2f} it/s  eta {_duration(eta)}")
        self.window = []

    def after_val_epoch(self, runner: Any, metrics: Mapping[str, Any] | None = None) -> None:
        if not metrics:
            return
        key, value = next(iter(metrics.items()))
        if isinstance(value, (int, float)) and (self.best is None or value > self.best[1]):
            self.best = (key, float(value), runner.iter)
        size = _size(getattr(runner, "val_dataloader", None))
        if runner.iter < runner.max_iters:
            say(runner, f"evaluation at iteration {runner.iter}{size}: {main_metrics(metrics)}")
            return
        say(runner, f"evaluation at iteration {runner.iter}{size}:")
        for line in metrics_table(metrics):
            say(runner, line)

    def after_train(self, runner: Any) -> None:
        elapsed = time.perf_counter() - self.start
        done = runner.iter - self.first_iter
        say(runner, f"done: {done} iterations in {_duration(elapsed)}")
        if self.best is not None:
            key, value, step = self.best
            say(runner, f"best {key} {_value(value)} at iteration {step}")
        for line in _fault_lines(runner):
            say(runner, line)
        saved = [p for p in getattr(runner, "saved_checkpoints", []) if Path(p).exists()]
        if saved:
            say(runner, f"checkpoints: {', '.join(Path(p).name for p in saved)} in "
                        f"{Path(saved[-1]).parent}")
            say(runner, f"evaluate: pe-dense test {runner.cfg.filename or 'CONFIG'} {saved[-1]}")
        say(runner, f"full log: {log_file(runner)}")

    # -- test
    def before_test(self, runner: Any) -> None:
        self.start = time.perf_counter()
        say(runner, f"{_name(runner)}: {describe_model(runner.cfg.get('model'), runner.model)}"
                    f" on {_device(runner)}; {_size(runner.test_dataloader).strip(' ()')}")

    def after_test_epoch(self, runner: Any, metrics: Mapping[str, Any] | None = None) -> None:
        say(runner, f"results ({_duration(time.perf_counter() - self.start)}):")
        for line in metrics_table(metrics or {}):
            say(runner, line)


def _name(runner: Any) -> str:
    return Path(runner.cfg.filename).name if runner.cfg.filename else "run"


def _device(runner: Any) -> str:
    try:
        return str(next(runner.model.parameters()).device)
    except StopIteration:
        return "cpu"


def _size(loader: Any) -> str:
    try:
        return f" ({len(loader.dataset)} images)"
    except (AttributeError, TypeError):
        return ""


def _data_line(runner: Any) -> str:
    loader = runner.train_dataloader
    parts = [f"data: {len(loader.dataset)} training images, batch {loader.batch_size}"]
    val = runner._val_loop
    if val is not None and hasattr(val, "dataloader"):
        parts.append(f"{len(val.dataloader.dataset)} validation images")
    loop = runner.train_loop
    every = getattr(loop, "val_interval", None)
    text = ", ".join(parts) + f"; {runner.max_iters} iterations"
    if val is not None and every:
        text += (f", evaluation every {every}" if every < runner.max_iters else
                 ", evaluation at the end")
    hook = next((h for h in runner.hooks if type(h).__name__.endswith("CheckpointHook")), None)
    if hook is not None:
        interval = getattr(hook, "interval", 0)
        text += (f", checkpoints every {interval} and at the end"
                 if 0 < interval < runner.max_iters else ", a checkpoint at the end")
    return text


def _fault_lines(runner: Any) -> list[str]:
    lines = []
    nonfinite = getattr(runner, "nonfinite_iters", [])
    if nonfinite:
        shown = ", ".join(str(i) for i in nonfinite[:8]) + (" ..." if len(nonfinite) > 8 else "")
        lines.append(f"skipped {len(nonfinite)} batch(es) with a non-finite loss "
                     f"(skip_nonfinite): iterations {shown}")
    dataset = getattr(getattr(runner, "train_dataloader", None), "dataset", None)
    bad = getattr(dataset, "skipped", 0)
    if bad:
        lines.append(f"skipped {bad} training sample(s) that could not be read "
                     "(skip_bad_samples; paths in the log)")
    return lines
