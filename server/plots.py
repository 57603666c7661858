"""Loss and accuracy against simulated training time (PNG files, no display needed)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

from server.results import evaluated_rows

# The x axes: a row's field and its label.
TIME = ("sim_time_s", "Simulated training time (s)")
ENERGY = ("sim_energy_j", "Devices' energy (J)")
# File: the metric, its label and the x axis.
PLOTS = {
    "loss_vs_time.png": ("test_loss", "Test loss", TIME),
    "accuracy_vs_time.png": ("test_accuracy", "Test accuracy", TIME),
    "accuracy_vs_energy.png": ("test_accuracy", "Test accuracy", ENERGY),
}


def plot_curves(
    rows: Sequence[Mapping[str, Any]],
    initial: Mapping[str, float],
    directory: Path,
    label: str = "",
) -> list[Path]:
    """Draw each metric of :data:`PLOTS` against its axis, starting at the initial model (0).

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
    paths = []
    for name, (key, ylabel, (axis, xlabel)) in PLOTS.items():
        figure = Figure(figsize=(6, 4), layout="constrained")
        axes = figure.add_subplot()
        values = [initial[key]] + [row[key] for row in evaluated]
        axes.plot([0.0] + [row[axis] for row in evaluated], values, marker=".", label=label or None)
        axes.set_xlabel(xlabel)
        axes.set_ylabel(ylabel)
        axes.grid(alpha=0.3)
        if label:
            axes.legend()
        path = Path(directory) / name
        figure.savefig(path, dpi=120)
        paths.append(path)
    return paths
