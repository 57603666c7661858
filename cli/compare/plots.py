"""The comparison's figures (PNG, no display needed): Figs. 3-5, Remarks 2-3 and Eq. (8)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from cli.compare.decay import EARLY_ROUNDS, gradient_runs, loss_decays
from cli.compare.devices import DeviceAllocation
from cli.compare.table import RunResult

METRICS = (("test_loss", "Test loss"), ("test_accuracy", "Test accuracy"))


def _save(figure: Figure, path: Path) -> Path:
    figure.savefig(path, dpi=110)
    return path


def _curves(runs: Sequence[RunResult], labels: Sequence[str], title: str, target: float) -> Figure:
    """Loss and accuracy against simulated time, one line per run.

    The global model changes at the end of each round, so the curves are steps.
    """
    figure = Figure(figsize=(11, 4.2), layout="constrained")
    axes = figure.subplots(1, 2)
    for ax, (key, ylabel) in zip(axes, METRICS, strict=True):
        for run, label in zip(runs, labels, strict=True):
            ax.plot(*run.curve(key), label=label, linewidth=1.4, drawstyle="steps-post")
        ax.set_xlabel("Simulated training time (s)")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
    axes[1].axhline(target, color="grey", linestyle="--", linewidth=1, label=f"target {target:.0%}")
    axes[1].legend(fontsize=8)
    figure.suptitle(title)
    return figure


def plot_schemes(runs: Sequence[RunResult], path: Path, title: str, target: float) -> Path:
    """Figs. 4-5: every scheme's loss and accuracy against simulated time (one seed)."""
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
    """Eq. (8): per-round loss decay against sqrt(B), the early-round means and the fit."""
    figure = Figure(figsize=(5 * len(cells), 4.2), layout="constrained")
    axes = figure.subplots(1, len(cells), squeeze=False)[0]
    for ax, (cell, (runs, check)) in zip(axes, cells.items(), strict=True):
        for index, run in enumerate(gradient_runs(runs)):
            decays, batches = loss_decays(run)
            label = "each round (axis clipped)" if index == 0 else None
            ax.scatter(np.sqrt(batches), decays, s=4, alpha=0.25, color="grey", label=label)
        means = check["runs"]
        roots = np.sqrt([p["mean_global_batch"] for p in means])
        ax.scatter(
            roots,
            [p["mean_decay"] for p in means],
            color="C0",
            zorder=3,
            label=f"mean of first {EARLY_ROUNDS} rounds",
        )
        grid = np.linspace(0, roots.max() * 1.05, 50)
        top = max(abs(p["mean_decay"]) for p in means) or 1.0
        ax.set_ylim(-0.5 * top, 2.5 * top)
        fit = check["per_run"]
        ax.plot(
            grid,
            fit["xi"] * grid,
            color="C3",
            label=f"xi sqrt(B), xi = {fit['xi']:.2g}, R² = {fit['r2']:.2f}",
        )
        ax.set_title(cell)
        ax.set_xlabel("sqrt(global batch B)")
        ax.set_ylabel("Test-loss decay per round")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    return _save(figure, path)
