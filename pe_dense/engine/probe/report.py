"""What ``pe-dense probe`` writes: the comparison table (best block per task and encoder, the
shape of the papers' tables), the per-block table, ``probe.json`` and ``probe.png`` (metric
against block depth, one line per encoder, one panel per task). Every output says when an
encoder has random weights."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from pe_dense.engine.probe.settings import METRICS, TASKS
from pe_dense.utils.io import atomic_write_text, save_figure

__all__ = ["best_block", "summary_rows", "format_summary", "format_blocks", "format_markdown",
           "write_outputs", "plot_sweep"]

RANDOM = "random"


def _weights(encoder: dict[str, Any]) -> str:
    return RANDOM if encoder["random_weights"] else Path(str(encoder["weights"])).name


def best_block(encoder: dict[str, Any], task: str) -> int | None:
    """The block with the best value of the task's metric (max mIoU / J&F, min RMSE)."""
    per_block = encoder["tasks"].get(task, {}).get("per_block", {})
    key, better, _ = METRICS[task]
    values = {int(b): m[key] for b, m in per_block.items() if not math.isnan(m[key])}
    if not values:
        return None
    pick = max if better == "max" else min
    return pick(values, key=values.get)


def _cell(encoder: dict[str, Any], task: str, key: str, block: int | None, fmt: str) -> str:
    if block is None:
        return "-"
    return format(encoder["tasks"][task]["per_block"][str(block)][key], fmt)


def summary_rows(result: dict[str, Any]) -> list[list[str]]:
    """One row per encoder: name, weights, blocks, then per task its best value (block)."""
    tasks = [t for t in TASKS if t in result["settings"]["tasks"]]
    rows = []
    for enc in result["encoders"]:
        row = [enc["name"], _weights(enc), str(enc["num_layers"])]
        for task in tasks:
            block = best_block(enc, task)
            if task == "seg":
                row.append(f"{_cell(enc, task, 'mIoU', block, '.1f')} ({block})")
            elif task == "depth":
                row += [f"{_cell(enc, task, 'rmse', block, '.3f')} ({block})",
                        _cell(enc, task, "abs_rel", block, ".3f")]
            else:
                row.append(f"{_cell(enc, task, 'J&F-Mean', block, '.3f')} ({block})")
        rows.append(row)
    return rows


def _header(result: dict[str, Any]) -> list[str]:
    titles = {"seg": ["seg mIoU % (block)"], "depth": ["depth RMSE m (block)", "depth AbsRel"],
              "track": ["track J&F (block)"]}
    return ["encoder", "weights", "blocks"] + [
        t for task in TASKS if task in result["settings"]["tasks"] for t in titles[task]]


def _markdown(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows])


def _fixed(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(c) for c in col) for col in zip(header, *rows, strict=True)]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
                     for r in [header, ["-" * w for w in widths], *rows])


def format_summary(result: dict[str, Any], markdown: bool = False) -> str:
    """The comparison table: best block per task (block index 0-based, in brackets)."""
    header, rows = _header(result), summary_rows(result)
    return _markdown(header, rows) if markdown else _fixed(header, rows)


def _block_rows(result: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    tasks = [t for t in TASKS if t in result["settings"]["tasks"]]
    cols = {"seg": [("mIoU", "seg mIoU %", ".1f")],
            "depth": [("rmse", "depth RMSE m", ".3f"), ("abs_rel", "depth AbsRel", ".3f")],
            "track": [("J&F-Mean", "track J&F", ".3f")]}
    header = ["encoder", "block"] + [title for t in tasks for _, title, _ in cols[t]]
    rows = []
    for enc in result["encoders"]:
        for block in enc["indices"]:
            row = [enc["name"], str(block)]
            for task in tasks:
                per_block = enc["tasks"].get(task, {}).get("per_block", {})
                for key, _, fmt in cols[task]:
                    value = per_block.get(str(block), {}).get(key)
                    row.append("-" if value is None else format(value, fmt))
            rows.append(row)
    return header, rows


def format_blocks(result: dict[str, Any], markdown: bool = False) -> str:
    """Every swept block of every encoder, one row each."""
    header, rows = _block_rows(result)
    return _markdown(header, rows) if markdown else _fixed(header, rows)


def format_markdown(result: dict[str, Any]) -> str:
    """``probe.md``: the settings line, the comparison table and the per-block table."""
    s = result["settings"]
    random = [e["name"] for e in result["encoders"] if e["random_weights"]]
    note = (f"**Random weights** ({', '.join(random)}): these numbers only show that the "
            "protocol runs, not what the encoders can do.\n\n" if random else "")
    return (f"{note}Frozen backbones, linear heads trained for {s['iters']} steps of "
            f"{s['batch_size']} images at short side {s['short_side']}; tracking at short side "
            f"{s['track_short_side']}. Best block per task (0-based index in brackets):\n\n"
            f"{format_summary(result, True)}\n\nEvery block:\n\n{format_blocks(result, True)}\n")


def plot_sweep(result: dict[str, Any], path: str | Path) -> Path:
    """Metric against block depth ((block + 1) / blocks), one line per encoder, one panel per
    task; random-weight encoders are labelled so and the title says it."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks = [t for t in TASKS if t in result["settings"]["tasks"]]
    fig, axes = plt.subplots(1, len(tasks), figsize=(4.6 * len(tasks), 3.6), squeeze=False)
    for ax, task in zip(axes[0], tasks, strict=True):
        key, better, title = METRICS[task]
        for enc in result["encoders"]:
            per_block = enc["tasks"].get(task, {}).get("per_block", {})
            blocks = sorted(int(b) for b in per_block)
            label = enc["name"] + (" (random weights)" if enc["random_weights"] else "")
            ax.plot([(b + 1) / enc["num_layers"] for b in blocks],
                    [per_block[str(b)][key] for b in blocks], marker="o", markersize=3,
                    label=label)
        ax.set_title(f"{title} ({'higher' if better == 'max' else 'lower'} is better)",
                     fontsize=10)
        ax.set_xlabel("block depth: (block + 1) / blocks")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    if any(e["random_weights"] for e in result["encoders"]):
        fig.suptitle("RANDOM WEIGHTS: the curves show the protocol, not the encoders",
                     color="red", fontsize=10)
    fig.tight_layout()
    return save_figure(fig, path, dpi=110)


def write_outputs(result: dict[str, Any], out: str | Path, plot: bool = True) -> list[Path]:
    """``probe.json``, ``probe.md`` and (when ``plot``) ``probe.png`` under ``out``, each
    written atomically; returns their paths."""
    out = Path(out)
    paths = [atomic_write_text(out / "probe.json", json.dumps(result, indent=2) + "\n"),
             atomic_write_text(out / "probe.md", format_markdown(result))]
    if plot and any(e["tasks"] for e in result["encoders"]):
        paths.append(plot_sweep(result, out / "probe.png"))
    return paths
