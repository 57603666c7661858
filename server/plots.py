"""Loss and accuracy against simulated training time (PNG files, no display needed)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

from server.results import evaluated_rows

PLOTS = {
    "loss_vs_time.png": ("test_loss", "Test loss"),
    "accuracy_vs_time.png": ("test_accuracy", "Test accuracy"),
}


def plot_curves(
    rows: Sequence[Mapping[str, Any]],
    initial: Mapping[str, float],
    directory: Path,
    label: str = "",
) -> list[Path]:
    """Draw each metric of :data:`PLOTS` against ``sim_time_s``, starting at the initial model.

    Parameters
    ----------
    rows
        The rows of ``rounds.jsonl``.
    initial
        Test metrics of the initial model, drawn at time 0.
    directory
        Where the PNG files go.
    label
        Legend entry of the curve (the scheme); no legend when empty.

    Returns
    -------
    list[Path]
        The files written.
    """
    evaluated = evaluated_rows(rows)
    times = [0.0] + [row["sim_time_s"] for row in evaluated]
    paths = []
    for name, (key, ylabel) in PLOTS.items():
        figure = Figure(figsize=(6, 4), layout="constrained")
        axes = figure.add_subplot()
        values = [initial[key]] + [row[key] for row in evaluated]
        axes.plot(times, values, marker=".", label=label or None)
        axes.set_xlabel("Simulated training time (s)")
        axes.set_ylabel(ylabel)
        axes.grid(alpha=0.3)
        if label:
            axes.legend()
        path = Path(directory) / name
        figure.savefig(path, dpi=120)
        paths.append(path)
    return paths
