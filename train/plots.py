"""Loss-curve figure for the training report (headless: the pipeline runs without a display)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen before pyplot is imported)


def loss_curve_png(
    result_histories: dict[str, list[tuple[int, float]]], path: Path, ylabel: str = "assistant-token loss"
) -> Path:
    """Plot one line per named ``(step, loss)`` history (e.g. ``phase1/train``, ``phase1/val``) into a PNG.

    Empty histories are skipped, so a phase without validation does not add an empty legend entry.
    Returns ``path`` for convenience.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(7, 4))
    try:
        for label, history in result_histories.items():
            if history:
                steps, losses = zip(*history, strict=True)
                ax.plot(steps, losses, marker="o" if len(history) < 20 else None, markersize=3, label=label)
        ax.set_xlabel("optimizer step")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend()
        fig.tight_layout()
        fig.savefig(path, dpi=120)
    finally:
        plt.close(fig)
    return path


def scaling_curve_png(rows: list[dict], metric: str, path: Path) -> Path:
    """``metric`` against the number of domains and the number of distinct tools, one line per ``series``,
    side by side; rows that carry ``ci95_low``/``ci95_high`` get them as error bars."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
    try:
        for ax, x_key, label in (
            (axes[0], "domains", "general domains"),
            (axes[1], "tools", "distinct tools"),
        ):
            for series in sorted({r["series"] for r in rows}):
                mine = sorted((r for r in rows if r["series"] == series), key=lambda r: r[x_key])
                xs, ys = [r[x_key] for r in mine], [r[metric] for r in mine]
                err = None
                if all("ci95_low" in r for r in mine):
                    err = [[y - r["ci95_low"] for y, r in zip(ys, mine, strict=True)]]
                    err += [[r["ci95_high"] - y for y, r in zip(ys, mine, strict=True)]]
                ax.errorbar(xs, ys, yerr=err, marker="o", capsize=4, label=series)
            ax.set_xlabel(f"{label} in phase 1")
            ax.grid(alpha=0.3)
        axes[0].set_ylabel(metric)
        axes[0].legend()
        fig.tight_layout()
        fig.savefig(path, dpi=120)
    finally:
        plt.close(fig)
    return path
