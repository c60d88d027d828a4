"""Matplotlib figures written as PNG files: training curves and score-against-layer sweeps."""

from __future__ import annotations

import numpy as np

from pe_dense.utils.io import save_figure

__all__ = ["plot_curves", "plot_layer_sweep"]


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _style(ax, xlabel: str, reference: float | None = None) -> None:
    """Reference line, x label, grid and legend, the same on every panel."""
    if reference is not None:
        ax.axhline(reference, color="grey", linestyle="--", linewidth=1)
    ax.set_xlabel(xlabel)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)


def plot_curves(panels: dict[str, dict[str, tuple[list[int], list[float]]]], path: str,
                title: str = "", hlines: dict[str, float] | None = None,
                xlabel: str = "step") -> None:
    """Line plots, one panel per key of ``panels`` (panel -> {label: (steps, values)}),
    written as a PNG to ``path``. ``hlines``: panel -> a dashed reference level."""
    fig, axes = _pyplot().subplots(1, len(panels), figsize=(5 * len(panels), 3.6), squeeze=False)
    for ax, (name, series) in zip(axes[0], panels.items(), strict=True):
        for label, (steps, values) in series.items():
            ax.plot(steps, values, label=label, marker="." if len(steps) < 40 else None)
        ax.set_title(name)
        _style(ax, xlabel, (hlines or {}).get(name))
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    save_figure(fig, path, dpi=100)


def plot_layer_sweep(layers: list[int], series: dict[str, list[float]], path: str,
                     title: str = "", reference: float | None = None) -> None:
    """J&F (or any score) against layer: one line per entry of ``series`` (name -> one value per
    layer, in [0, 1]), the best value of the first series marked; written atomically as a PNG.
    ``reference``: a dashed horizontal level (e.g. a published number)."""
    from matplotlib.ticker import MaxNLocator

    fig, ax = _pyplot().subplots(figsize=(6.4, 3.8))
    for name, values in series.items():
        ax.plot(layers, values, marker="o" if len(layers) < 40 else None, label=name)
    first = next(iter(series.values()))
    best = int(np.nanargmax(first))
    ax.annotate(f"best: layer {layers[best]} ({first[best]:.3f})", (layers[best], first[best]),
                textcoords="offset points", xytext=(0, 8), ha="center", fontsize=8)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel("score")
    _style(ax, "layer (0-based block index)", reference)
    if title:
        ax.set_title(title, fontsize=10)
    fig.tight_layout()
    save_figure(fig, path, dpi=100)
