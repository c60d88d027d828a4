"""Per-rank training memory of a backbone under DDP and FSDP (torch FSDP2, one unit per block),
each in its own ``torchrun`` launch of :mod:`pe_dense.benchmark.strategy_worker`.

Every rank reports (MiB): ``params``, ``grads`` and ``optimizer`` (AdamW moments) - the bytes of
the tensors this rank holds, counted from the tensors themselves, so exact; ``state`` their sum;
``step_peak`` - what a training step needs on top of what was resident before it (activations,
the all-gathered blocks under FSDP, the gradient buckets under DDP and the first step's
optimiser state): on CPU the kernel's resident-set high-water mark (``VmHWM``, reset before the
step), on CUDA the allocator's peak; ``peak`` - the whole process's high-water mark (CPU: RSS,
including the Python runtime and libraries); ``step_s`` - the step's time.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
from dataclasses import asdict
from pathlib import Path

from pe_dense.benchmark.core import Case
from pe_dense.utils.sharding import STRATEGIES

__all__ = ["STRATEGIES", "measure_strategy", "strategy_rows", "format_strategy_table",
           "format_strategy_markdown"]

COLUMNS = [("model", "model", "s"), ("resolution", "res", "d"), ("batch_size", "batch", "d"),
           ("strategy", "strategy", "s"), ("grad_checkpointing", "ckpt", "s"),
           ("world_size", "ranks", "d"), ("rank", "rank", "d"), ("params", "params MiB", ".0f"),
           ("grads", "grads MiB", ".0f"), ("optimizer", "optim MiB", ".0f"),
           ("state", "state MiB", ".0f"), ("step_peak", "step peak MiB", ".0f"),
           ("peak", "peak MiB", ".0f"), ("step_s", "step s", ".1f")]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def measure_strategy(case: Case, strategy: str, nproc: int = 2, grad_checkpointing: bool = False,
                     steps: int = 1, timeout: float = 3600.0) -> list[dict]:
    """Launch ``torchrun --nproc_per_node nproc`` on the memory worker for a training ``case``;
    one dict per rank (see the module docstring). On CPU each rank runs one thread unless
    ``OMP_NUM_THREADS`` says otherwise."""
    if strategy not in STRATEGIES:
        raise ValueError(f"strategy {strategy!r} is not one of {STRATEGIES}")
    with tempfile.TemporaryDirectory(prefix="pe-strategy-") as out:
        cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(nproc),
               "--master_addr", "127.0.0.1", "--master_port", str(_free_port()),
               "-m", "pe_dense.benchmark.strategy_worker", json.dumps(asdict(case)), strategy,
               str(int(grad_checkpointing)), str(steps), out]
        env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env,
                              check=False)
        files = sorted(Path(out).glob("rank*.json"))
        if proc.returncode != 0 or len(files) != nproc:
            tail = "\n".join(proc.stderr.strip().splitlines()[-5:]) or "no output"
            raise RuntimeError(f"{strategy} memory run failed for {case}:\n{tail}")
        return [json.loads(f.read_text()) for f in files]


def strategy_rows(case: Case, strategy: str, grad_checkpointing: bool,
                  ranks: list[dict]) -> list[dict]:
    """Table rows, one per rank."""
    base = dict(model=case.model, resolution=case.resolution, batch_size=case.batch_size,
                device=case.device, strategy=strategy, grad_checkpointing=grad_checkpointing)
    return [{**base, **r} for r in ranks]


def _cell(row: dict, key: str, fmt: str) -> str:
    value = row.get(key, "")
    return format(value, fmt) if fmt != "s" and isinstance(value, (int, float)) else str(value)


def format_strategy_table(rows: list[dict]) -> str:
    """A fixed-width console table of per-rank rows."""
    widths = [max(len(title), *(len(_cell(r, k, f)) for r in rows)) for k, title, f in COLUMNS]
    lines = ["  ".join(t.rjust(w) for (_, t, _), w in zip(COLUMNS, widths, strict=True))]
    for r in rows:
        lines.append("  ".join(_cell(r, k, f).rjust(w)
                               for (k, _, f), w in zip(COLUMNS, widths, strict=True)))
    return "\n".join(lines)


def format_strategy_markdown(rows: list[dict]) -> str:
    """The same table in Markdown."""
    lines = ["| " + " | ".join(t for _, t, _ in COLUMNS) + " |",
             "|" + "|".join("---" for _ in COLUMNS) + "|"]
    lines += ["| " + " | ".join(_cell(r, k, f) for k, _, f in COLUMNS) + " |" for r in rows]
    return "\n".join(lines) + "\n"
