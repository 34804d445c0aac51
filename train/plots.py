"""Loss-curve figure for the training report (headless: the pipeline runs without a display)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen before pyplot is imported)


def loss_curve_png(result_histories: dict[str, list[tuple[int, float]]], path: Path) -> Path:
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
        ax.set_ylabel("assistant-token loss")
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend()
        fig.tight_layout()
        fig.savefig(path, dpi=120)
    finally:
        plt.close(fig)
    return path
