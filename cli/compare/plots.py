"""The comparison's figures (PNG, no display needed): Figs. 3-5, Remarks 2-3 and Eq. (8)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

from cli.compare.devices import DeviceAllocation
from cli.compare.table import RunResult
from server.plots import ENERGY, TIME

METRICS = (("test_loss", "Test loss"), ("test_accuracy", "Test accuracy"))


def _save(figure: Figure, path: Path) -> Path:
    figure.savefig(path, dpi=110)
    return path


# The panels of a comparison's curves: metric, its label and the x axis.
PANELS = ((*METRICS[0], TIME), (*METRICS[1], TIME), (*METRICS[1], ENERGY))


def _curves(runs: Sequence[RunResult], labels: Sequence[str], title: str, target: float) -> Figure:
    """Loss and accuracy against simulated time, and accuracy against energy, a line per run.

    The global model changes at the end of each round, so the curves are steps.
    """
    figure = Figure(figsize=(15, 4.2), layout="constrained")
    axes = figure.subplots(1, len(PANELS))
    for ax, (key, ylabel, (axis, xlabel)) in zip(axes, PANELS, strict=True):
        for run, label in zip(runs, labels, strict=True):
            ax.plot(*run.curve(key, axis), label=label, linewidth=1.4, drawstyle="steps-post")
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
    for ax in axes[1:]:
        ax.axhline(target, color="grey", linestyle="--", linewidth=1, label=f"target {target:.0%}")
    axes[1].legend(fontsize=8)
    figure.suptitle(title)
    return figure


def plot_schemes(runs: Sequence[RunResult], path: Path, title: str, target: float) -> Path:
    """Figs. 4-5: every scheme's loss and accuracy against simulated time and energy (one seed)."""
    return _save(_curves(runs, [r.spec.scheme for r in runs], title, target), path)


def plot_sweep(runs: Sequence[RunResult], path: Path, title: str, target: float) -> Path:
    """Fig. 3: the proposed scheme's loss and accuracy for each base learning rate."""
    runs = sorted(runs, key=lambda r: r.summary["config"]["learning-rate"])
    labels = [f"eta0 = {r.summary['config']['learning-rate']:g}" for r in runs]
    return _save(_curves(runs, labels, title, target), path)


def plot_allocation(allocation: DeviceAllocation, path: Path, title: str) -> Path:
    """Remarks 2-3: mean batch against speed and mean uplink slot against rate, per device."""
    a = allocation
    figure = Figure(figsize=(11, 4.2), layout="constrained")
    left, right = figure.subplots(1, 2)
    rate_mbps, slot_ms = a.uplink_rate_bps / 1e6, a.slot_s * 1e3
    points = left.scatter(a.speed, a.batch, c=rate_mbps, cmap="viridis", s=50, zorder=3)
    left.errorbar(a.speed, a.batch, yerr=a.batch_std, fmt="none", ecolor="grey", zorder=2)
    figure.colorbar(points, ax=left, label="Uplink rate (Mbit/s)")
    left.set_xlabel("Training speed f_k / C (samples/s)")
    left.set_ylabel("Batch size B_k (mean over rounds)")
    points = right.scatter(rate_mbps, slot_ms, c=a.speed, cmap="plasma", s=50, zorder=3)
    right.errorbar(rate_mbps, slot_ms, yerr=a.slot_std_s * 1e3, fmt="none", ecolor="grey")
    figure.colorbar(points, ax=right, label="Training speed (samples/s)")
    right.set_xlabel("Uplink rate R_k (Mbit/s)")
    right.set_ylabel("Uplink slot tau_k (ms of a 10 ms frame)")
    for ax in (left, right):
        ax.grid(alpha=0.3)
    figure.suptitle(title)
    return _save(figure, path)


def plot_decay(cells: dict[str, tuple[list[RunResult], dict[str, Any]]], path: Path) -> Path:
    """Eq. (8): each decay run's mean probe-loss decay against its global batch, per law."""
    figure = Figure(figsize=(5 * len(cells), 4.2), layout="constrained")
    axes = figure.subplots(1, len(cells), squeeze=False)[0]
    for ax, (cell, (_, check)) in zip(axes, cells.items(), strict=True):
        for law, fit in check["fits"].items():
            points = fit["points"]
            alpha = f", alpha = {fit['alpha']:.2f}" if "alpha" in fit else ""
            ax.plot(
                [p["global_batch"] for p in points],
                [p["mean_decay"] for p in points],
                marker="o",
                label=f"eta {law}{alpha}",
            )
        ax.axhline(0.0, color="grey", lw=0.8)
        ax.set_xscale("log")
        ax.set_title(cell)
        ax.set_xlabel("global batch B")
        ax.set_ylabel("Mean training-loss decay per round (probe set)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    return _save(figure, path)
