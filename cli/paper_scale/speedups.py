"""Proposed's speedups over a baseline from finished runs: Table II's claims and the regime map.

A speedup is the baseline's time to the target over the proposed scheme's. Where only the
proposed scheme reaches the target within the budget, the baseline's budget gives a lower
bound; where only the baseline does, an upper bound; where neither does, none. A run that
stopped early (training diverged, or no device had a finite update) never reaches it: the
speedup is then 0 or infinite.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from cli.compare.settings import PROPOSED
from cli.compare.table import RunResult

# How ``summary.json`` says a run stopped before its budget (see server.app and the loop).
EARLY_STOPS = ("stopped early", "training diverged")


@dataclass(frozen=True)
class Speedup:
    """A speedup, or a bound on it: ``bound`` is ``=``, ``>``, ``<`` or ``?`` (none)."""

    value: float
    bound: str

    def __str__(self) -> str:
        if self.bound == "?":
            return "neither reached"
        if self.value == 0:
            return "0× (proposed stopped early)"
        if math.isinf(self.value):
            return "∞ (the other stopped early)"
        prefix = "" if self.bound == "=" else self.bound + " "
        return f"{prefix}{self.value:.2f}×"

    @property
    def favours_proposed(self) -> bool | None:
        """Whether proposed is faster (None when the bound leaves it open)."""
        if self.bound == "=":
            return self.value > 1
        if self.bound == ">":
            return True if self.value >= 1 else None
        if self.bound == "<":
            return False if self.value <= 1 else None
        return None


def budget_of(run: RunResult) -> float:
    """Return the simulated time the run trained for (infinite if it stopped early)."""
    if run.summary.get("stopped", "").startswith(EARLY_STOPS):
        return math.inf
    return float(run.rows[-1]["sim_time_s"])


def speedup(proposed: RunResult, baseline: RunResult, target: float) -> Speedup:
    """Proposed's speedup over ``baseline`` at ``target`` test accuracy."""
    mine, theirs = proposed.time_to(target), baseline.time_to(target)
    if mine is not None and theirs is not None:
        return Speedup(theirs / mine, "=")
    if mine is not None:
        theirs_at_most = budget_of(baseline)
        return (
            Speedup(math.inf, "=")
            if math.isinf(theirs_at_most)
            else Speedup(theirs_at_most / mine, ">")
        )
    if theirs is not None:
        mine_at_most = budget_of(proposed)
        return (
            Speedup(0.0, "=") if math.isinf(mine_at_most) else Speedup(theirs / mine_at_most, "<")
        )
    return Speedup(float("nan"), "?")


@dataclass(frozen=True)
class RegimePoint:
    """Proposed's speedups over model-FEEL and gradient-FEEL at one (cycles per FLOP, bits)."""

    cycles_per_flop: float
    gradient_bits: int
    over_model_feel: Speedup
    over_gradient_feel: Speedup
    proposed_batch: float


def regime_point(
    runs: dict[str, RunResult], cycles: float, bits: int, target: float
) -> RegimePoint:
    """Return the point of ``runs``: proposed, model-feel and gradient-feel at one cycles/bits."""
    proposed = runs[PROPOSED]
    batch = float(np.mean([row["global_batch"] for row in proposed.rows]))
    return RegimePoint(
        cycles,
        bits,
        speedup(proposed, runs["model-feel"], target),
        speedup(proposed, runs["gradient-feel"], target),
        batch,
    )


def plot_regime(points: list[RegimePoint], path: Path) -> Path:
    """Heat maps of log2 speedup over model-FEEL and gradient-FEEL: bits x cycles per FLOP."""
    cycles = sorted({p.cycles_per_flop for p in points})
    bits = sorted({p.gradient_bits for p in points})
    figure = Figure(figsize=(10, 3.8), layout="constrained")
    panels = (("over_model_feel", "over model-FEEL"), ("over_gradient_feel", "over gradient-FEEL"))
    for index, (attribute, title) in enumerate(panels):
        axes = figure.add_subplot(1, 2, index + 1)
        grid = np.full((len(bits), len(cycles)), np.nan)
        for point in points:
            value = getattr(point, attribute)
            i, j = bits.index(point.gradient_bits), cycles.index(point.cycles_per_flop)
            grid[i, j] = (
                np.log2(np.clip(value.value, 2**-4, 2**4)) if value.bound != "?" else np.nan
            )
            axes.text(j, i, str(value), ha="center", va="center", fontsize=9)
        image = axes.imshow(grid, cmap="RdBu", vmin=-4, vmax=4, origin="lower", aspect="auto")
        axes.set_xticks(range(len(cycles)), [f"{c:g}" for c in cycles])
        axes.set_yticks(range(len(bits)), [str(b) for b in bits])
        axes.set_xlabel("cycles per FLOP (compute cost; DenseNet121 latencies)")
        axes.set_ylabel("gradient bits b")
        axes.set_title(f"proposed's speedup {title}")
    figure.colorbar(image, ax=figure.axes, label="log2 speedup (blue: proposed faster)")
    figure.savefig(path, dpi=110)
    return path
