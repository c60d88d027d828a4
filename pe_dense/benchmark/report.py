"""Benchmark results as tables (console, Markdown, CSV), JSON and matplotlib plots; and the
sweep of cases a command line asks for."""

from __future__ import annotations

import itertools
import json
import math
import os
from collections.abc import Sequence
from pathlib import Path

from pe_dense.benchmark.core import Case, Result
from pe_dense.utils.io import atomic_write_text, save_figure

__all__ = ["make_cases", "rows_of", "format_table", "format_markdown", "format_csv",
           "write_results", "plot_results"]

COLUMNS = [("impl", "impl", "s"), ("model", "model", "s"), ("resolution", "res", "d"),
           ("batch_size", "batch", "d"), ("dtype", "dtype", "s"), ("attention", "attn", "s"),
           ("mode", "mode", "s"), ("compile", "compile", "s"), ("latency_ms", "ms (med)", ".1f"),
           ("latency_p90_ms", "ms (p90)", ".1f"), ("images_per_s", "img/s", ".2f"),
           ("tokens_per_s", "tok/s", ".0f"), ("peak_mem_mb", "peak MiB", ".0f"),
           ("gflops", "GFLOP", ".1f"), ("params_m", "params M", ".1f"), ("status", "status", "s")]


def make_cases(models: Sequence[str], resolutions: Sequence[int], batch_sizes: Sequence[int],
               dtypes: Sequence[str], attentions: Sequence[str], modes: Sequence[str],
               compile: bool = False, device: str = "cpu",
               overrides: dict | None = None) -> list[Case]:
    """Every combination of the given lists, as :class:`Case` objects (``models``: PE variants
    and ``timm/<name>`` encoders alike; ``overrides``: ``create_backbone`` keyword arguments
    applied to every model). Every case is checked before anything runs (patch multiples,
    windowed attention only where the backbone supports it)."""
    return [Case(m, r, b, d, a, compile, device, mo, dict(overrides or {}))
            for m, r, b, d, a, mo in
            itertools.product(models, resolutions, batch_sizes, dtypes, attentions, modes)]


def rows_of(results: list[Result]) -> list[dict]:
    """Table rows of one case's results; a timm row after ours gets our/their speed and
    memory ratios."""
    rows = [r.row() for r in results]
    by_impl = {r.impl: r for r in results if r.status == "ok"}
    ours, theirs = by_impl.get("pe_dense"), by_impl.get("timm")
    if ours is not None and theirs is not None:
        rows[[r.impl for r in results].index("timm")].update(
            speedup_vs_timm=ours.images_per_s / theirs.images_per_s,
            memory_ratio_vs_timm=ours.peak_mem_mb / theirs.peak_mem_mb)
    for row, result in zip(rows, results, strict=True):  # other runtimes: vs timm and eager
        if result.impl in ("pe_dense", "timm") or result.status != "ok":
            continue
        if theirs is not None:
            row["x_timm"] = result.images_per_s / theirs.images_per_s
        if ours is not None:
            row["x_eager"] = result.images_per_s / ours.images_per_s
    return rows


def format_table(rows: list[dict]) -> str:
    """A fixed-width console table (each column as wide as its longest cell, so long encoder
    names such as ``timm/vit_small_patch16_dinov3`` keep it aligned); timm rows carry our/their
    ratios and output agreement."""
    cols = [c for c in COLUMNS if any(c[0] in r for r in rows)]
    cells = [[_console_cell(r.get(key), fmt) for key, _, fmt in cols] for r in rows]
    widths = [max([len(title), 9, *(len(row[i]) for row in cells)])
              for i, (_, title, _) in enumerate(cols)]
    header = "  ".join(title.ljust(w) if fmt == "s" else title.rjust(w)
                       for (_, title, fmt), w in zip(cols, widths, strict=True))
    lines = [header, "-" * len(header)]
    for r, row in zip(rows, cells, strict=True):
        line = "  ".join(c.ljust(w) if fmt == "s" else c.rjust(w)
                         for c, (_, _, fmt), w in zip(row, cols, widths, strict=True))
        if "x_timm" in r or "x_eager" in r:
            line += "  " + ", ".join(f"x{r[k]:.2f} {k[2:]}" for k in ("x_timm", "x_eager")
                                     if k in r)
            line += f", cosine {r['cosine']:.5f}" if "cosine" in r else ""
        if "speedup_vs_timm" in r:
            line += (f"  ours/timm: speed x{r['speedup_vs_timm']:.2f}, memory "
                     f"x{r['memory_ratio_vs_timm']:.2f}, max |diff| {r['max_abs_diff']:.1e}")
        lines.append(line.rstrip())
    return "\n".join(lines)


def _console_cell(value, fmt: str) -> str:
    if value is None or _nan(value):
        return "-"
    return str(value) if fmt == "s" else format(value, fmt)


def format_markdown(rows: list[dict]) -> str:
    """The results as a Markdown table (for docs/benchmarks.md)."""
    keys = [("impl", "impl"), ("model", "model"), ("resolution", "res"), ("batch_size", "batch"),
            ("attention", "attention"), ("mode", "mode"), ("latency_ms", "ms (median)"),
            ("latency_p90_ms", "ms (p90)"), ("images_per_s", "img/s"),
            ("peak_mem_mb", "peak MiB"), ("gflops", "GFLOP"), ("status", "status")]
    extra = [("speedup_vs_timm", "ours/timm speed"), ("memory_ratio_vs_timm", "ours/timm memory"),
             ("x_timm", "speed vs timm"), ("x_eager", "speed vs eager"),
             ("max_abs_diff", "max abs diff"), ("rel_diff", "rel diff"), ("cosine", "cosine")]
    keys += [k for k in extra if any(r.get(k[0]) is not None for r in rows)]
    lines = ["| " + " | ".join(t for _, t in keys) + " |", "|" + "---|" * len(keys)]
    for r in rows:
        cells = []
        for key, _ in keys:
            v = r.get(key)
            if key in ("max_abs_diff", "rel_diff") and v is not None:
                cells.append(f"{v:.1e}")
            elif key == "cosine" and v is not None:
                cells.append(f"{v:.5f}")
            elif (key.endswith("_vs_timm") or key.startswith("x_")) and v is not None:
                cells.append(f"x{v:.2f}")
            elif isinstance(v, float):
                cells.append("-" if math.isnan(v) else f"{v:.3g}" if abs(v) < 1 else f"{v:.1f}")
            else:
                cells.append("" if v is None else str(v))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _nan(v) -> bool:
    return isinstance(v, float) and math.isnan(v)


def format_csv(rows: list[dict]) -> str:
    """All keys of all rows as CSV columns (first-seen order)."""
    keys = list(dict.fromkeys(k for r in rows for k in r))
    lines = [",".join(keys)] + [",".join(str(r.get(k, "")) for k in keys) for r in rows]
    return "\n".join(lines) + "\n"


def write_results(rows: list[dict], json_path: str | os.PathLike | None = None,
                  markdown: str | os.PathLike | None = None,
                  csv: str | os.PathLike | None = None,
                  plot_dir: str | os.PathLike | None = None) -> list[Path]:
    """Write the requested outputs (each atomically); returns the plot paths written."""
    if json_path:
        atomic_write_text(json_path, json.dumps(rows, indent=2, default=str))
    if markdown:
        atomic_write_text(markdown, format_markdown(rows) + "\n")
    if csv:
        atomic_write_text(csv, format_csv(rows))
    return plot_results(rows, Path(plot_dir)) if plot_dir else []


def plot_results(rows: list[dict], out_dir: Path) -> list[Path]:
    """Throughput and peak memory against resolution, one line per (impl, model, attention,
    batch, mode); one PNG per metric. Returns the written paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ok = [r for r in rows if r["status"] == "ok"]
    series: dict[str, list[dict]] = {}
    for r in ok:
        label = f"{r['impl']} {r['model']} {r['attention']} b{r['batch_size']} {r['mode']}"
        series.setdefault(label, []).append(r)
    paths = []
    for key, title in (("images_per_s", "throughput (images/s)"),
                       ("peak_mem_mb", "peak memory (MiB)")):
        fig, ax = plt.subplots(figsize=(7, 4.5))
        for label, points in sorted(series.items()):
            points = sorted(points, key=lambda r: r["resolution"])
            ax.plot([p["resolution"] for p in points], [p[key] for p in points], marker="o",
                    linestyle="--" if "windowed" in label else "-", label=label)
        ax.set_xlabel("input side (pixels)")
        ax.set_ylabel(title)
        ax.set_yscale("log")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
        ax.set_title(f"backbone {title} on {ok[0]['device'] if ok else '?'}")
        paths.append(save_figure(fig, out_dir / f"{key}.png", dpi=110, bbox_inches="tight"))
    return paths
