"""Check the loss-decay model Delta L = xi sqrt(B) of Eq. (8) on fixed-batch runs.

The loss is the training loss of Eqs. (4)/(7) on the run's fixed probe set of training
examples (``probe_loss`` in ``rounds.jsonl``, :mod:`server.probe`), measured after every round
and for the initial model; the decay of round n is L(w[n-1]) - L(w[n]) and B is the round's
global batch. Each cell plans fixed-batch decay runs (:mod:`cli.compare.settings`): one per
batch level and learning-rate law, all from the same initial model.

The fit is least squares of mean decay = c B^alpha over the runs of one law, one point per
run (its mean decay over its rounds, negative or not: no decay is dropped), alpha on a grid;
runs with identical trajectories (same B and decays) count once. The confidence interval of
alpha is a seeded percentile bootstrap that resamples each run's rounds with replacement.

Under eta = eta0 sqrt(B / B0) (Sec. III-A) a first-order expansion, Delta L ~ eta |grad L|^2,
already gives alpha = 1/2; with eta fixed (``lr-scaling = "fixed"``) it gives alpha = 0, and
only the batch's smaller gradient noise can make larger batches decay more. So Eq. (8) is
said to hold under its learning-rate law when 1/2 lies in the interval of the sqrt runs, and
the fixed-eta control says whether the batch itself gives B^(1/2) (1/2 in its interval) or
nothing beyond the learning rate (0 in its interval). Fewer than :data:`MIN_BATCHES`
distinct global batches are not judged.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from cli.compare.table import RunResult
from server.results import PROBE_METRIC

MIN_BATCHES = 5
CONFIDENCE = 0.95
BOOTSTRAP_DRAWS = 1000
BOOTSTRAP_SEED = 0
# The exponents tried by the fit: -1.5 to 2.5 in steps of 0.005.
ALPHA_GRID = np.linspace(-1.5, 2.5, 801)
LAWS = ("sqrt", "fixed")


@dataclass(frozen=True)
class DecaySeries:
    """One run's per-round probe-loss decays at its global batch."""

    global_batch: float
    decays: np.ndarray

    def same_as(self, other: DecaySeries) -> bool:
        """Whether ``other`` is the same trajectory (a duplicate point)."""
        return self.global_batch == other.global_batch and np.array_equal(self.decays, other.decays)


def decay_series(run: RunResult) -> DecaySeries:
    """Return the probe-loss decays L(w[n-1]) - L(w[n]) and mean global batch of ``run``."""
    _, loss = run.curve(PROBE_METRIC)
    batch = float(np.mean([r["global_batch"] for r in run.rows]))
    return DecaySeries(batch, loss[:-1] - loss[1:])


def distinct(series: Sequence[DecaySeries]) -> list[DecaySeries]:
    """Return ``series`` without the trajectories seen before (identical runs count once)."""
    kept: list[DecaySeries] = []
    for one in series:
        if not any(one.same_as(other) for other in kept):
            kept.append(one)
    return kept


def fit_power(batches: np.ndarray, decays: np.ndarray) -> np.ndarray:
    """Least-squares alpha of decays = c B^alpha, per row of ``decays`` (..., runs).

    For each alpha of :data:`ALPHA_GRID` c is linear, c = <x, d> / <x, x> with x = B^alpha
    (B over its geometric mean, for conditioning); the alpha of least residual is returned.
    """
    scaled = batches / np.exp(np.mean(np.log(batches)))
    x = scaled[None, :] ** ALPHA_GRID[:, None]  # (grid, runs)
    d = np.atleast_2d(decays)  # (draws, runs)
    c = d @ x.T / np.sum(x * x, axis=1)  # (draws, grid)
    residual = np.sum(d * d, axis=1)[:, None] - c * (d @ x.T)
    alpha = ALPHA_GRID[np.argmin(residual, axis=1)]
    return alpha if np.ndim(decays) > 1 else alpha[0]


def bootstrap_alpha(
    series: Sequence[DecaySeries], draws: int = BOOTSTRAP_DRAWS, seed: int = BOOTSTRAP_SEED
) -> np.ndarray:
    """Return ``draws`` fitted alphas, each on every run's rounds resampled with replacement."""
    rng = np.random.default_rng(seed)
    means = np.column_stack(
        [s.decays[rng.integers(0, len(s.decays), (draws, len(s.decays)))].mean(1) for s in series]
    )
    return fit_power(np.array([s.global_batch for s in series]), means)


def law_fit(runs: Sequence[RunResult]) -> dict[str, Any]:
    """Fit alpha with its bootstrap interval on the decay runs of one learning-rate law."""
    everything = [decay_series(r) for r in runs]
    series = distinct(everything)
    batches = np.array([s.global_batch for s in series])
    means = np.array([s.decays.mean() for s in series])
    fit: dict[str, Any] = {
        "runs": len(everything),
        "duplicates": len(everything) - len(series),
        "points": [
            {"global_batch": float(b), "mean_decay": float(d)}
            for b, d in zip(batches, means, strict=True)
        ],
        "distinct_batches": len(np.unique(batches)),
    }
    if fit["distinct_batches"] < 2:
        return fit
    tail = 100 * (1 - CONFIDENCE) / 2
    low, high = np.percentile(bootstrap_alpha(series), [tail, 100 - tail])
    return {**fit, "alpha": float(fit_power(batches, means)), "ci": [float(low), float(high)]}


def decay_check(runs: Sequence[RunResult]) -> dict[str, Any]:
    """Fit Eq. (8) on the decay runs of one cell, per learning-rate law; judge it."""
    decay_runs = [r for r in runs if r.spec.fixed_batch]
    fits = {law: law_fit([r for r in decay_runs if r.spec.lr_scaling == law]) for law in LAWS}
    judged = all(f["distinct_batches"] >= MIN_BATCHES for f in fits.values())
    return {
        "confidence": CONFIDENCE,
        "fits": fits,
        "holds": _inside(0.5, fits["sqrt"]) if judged else None,
        "control": _control(fits["fixed"]) if judged else None,
    }


def _inside(value: float, fit: dict[str, Any]) -> bool:
    """Whether ``value`` lies in the fit's confidence interval."""
    low, high = fit["ci"]
    return bool(low <= value <= high)


def _control(fit: dict[str, Any]) -> str:
    """Return what the fixed-eta runs say: ``batch`` (B^0.5), ``rate`` (B^0) or ``neither``."""
    if _inside(0.5, fit):
        return "batch"
    return "rate" if _inside(0.0, fit) else "neither"


def _alpha(fit: dict[str, Any], confidence: float) -> str:
    """``alpha = a (lo to hi)`` of a fit, with its runs."""
    low, high = fit["ci"]
    return (
        f"alpha = {fit['alpha']:.2f} ({confidence:.0%} CI {low:.2f} to {high:.2f}; "
        f"{len(fit['points'])} distinct runs at {fit['distinct_batches']} global batches, "
        f"{fit['duplicates']} duplicates counted once)"
    )


CONTROL_WORDS = {
    "batch": "larger batches decay faster as B^0.5 even at a fixed learning rate, so Eq. (8) "
    "holds as a property of the batch, not only of the learning-rate law",
    "rate": "the batch alone does not change the decay, so the B^0.5 under eta ~ sqrt(B) is "
    "the learning-rate law's first-order effect (Delta L ~ eta |grad L|^2), not the batch's",
    "neither": "the decay's dependence on the batch itself is neither B^0 nor B^0.5",
}


def verdict(check: dict[str, Any]) -> str:
    """Say in plain words whether Eq. (8) holds in a cell, without and with the control."""
    if check["holds"] is None:
        return (
            f"too few decay runs with different global batches (at least {MIN_BATCHES} per "
            "learning-rate law) to judge Eq. (8)."
        )
    fits, confidence = check["fits"], check["confidence"]
    if not check["holds"]:
        said, where = "does not hold", "0.5 is outside the interval"
    elif _inside(0.0, fits["sqrt"]):
        said, where = "is not confirmed", "the interval holds 0.5 but also 0 (no batch effect)"
    else:
        said, where = "holds", "0.5 is inside the interval and 0 is not"
    return (
        f"Eq. (8) {said} under its learning-rate law eta ~ sqrt(B): the training loss on the "
        f"probe set decays per round as B^alpha, {_alpha(fits['sqrt'], confidence)}, and "
        f"{where}. With the fixed-eta control, {_alpha(fits['fixed'], confidence)}: "
        f"{CONTROL_WORDS[check['control']]}."
    )
