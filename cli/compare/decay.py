"""Check the loss-decay model Delta L = xi sqrt(B) of Eq. (8) on the gradient schemes' runs.

The global loss L(w[n]) is measured by the test loss after each round (the held-out split,
evaluated on the whole set, so its round-to-round change is not batch noise); the loss decay
of round n is L(w[n-1]) - L(w[n]) and B is the round's global batch.

Two fits, both least squares of Delta L = xi sqrt(B) through the origin:

- per run: each gradient run's mean decay over its first :data:`EARLY_ROUNDS` rounds
  against the root of its mean global batch. All runs start from the same model, so this
  compares B at the same stage of training. A log-log fit gives the exponent alpha of
  Delta L ~ B^alpha, which Eq. (8) says is 1/2.
- per round: every round of every gradient run. Later rounds decay less at any B, so this
  shows how much of the variation Eq. (8) explains over a whole run.

The model is said to hold when the per-run fit has R^2 >= :data:`HOLDS_R2` and alpha is
within :data:`HOLDS_ALPHA_TOLERANCE` of 1/2; it is not judged with fewer than
:data:`MIN_BATCHES` distinct mean global batches.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from cli.compare.table import RunResult
from strategy.schemes import MODEL_SCHEMES

EARLY_ROUNDS = 10
HOLDS_R2 = 0.8
HOLDS_ALPHA_TOLERANCE = 0.15
MIN_BATCHES = 3


def loss_decays(run: RunResult) -> tuple[np.ndarray, np.ndarray]:
    """Per-round test-loss decay L(w[n-1]) - L(w[n]) and global batch B of ``run``."""
    _, loss = run.curve("test_loss")
    batches = np.array([r["global_batch"] for r in run.rows], dtype=float)
    return loss[:-1] - loss[1:], batches


def fit_sqrt(batches: np.ndarray, decays: np.ndarray) -> dict[str, float]:
    """Least-squares xi of decay = xi sqrt(B) through the origin, and R^2 of that fit."""
    x = np.sqrt(batches)
    xi = float(x @ decays / (x @ x))
    residual = decays - xi * x
    total = float(np.sum((decays - decays.mean()) ** 2))
    r2 = 1.0 - float(residual @ residual) / total if total > 0 else float("nan")
    return {"xi": xi, "r2": r2, "points": len(x)}


def fit_exponent(batches: np.ndarray, decays: np.ndarray) -> dict[str, float]:
    """Exponent alpha and R^2 of log(decay) = log(c) + alpha log(B) (positive decays only)."""
    keep = decays > 0
    if keep.sum() < 2 or np.ptp(batches[keep]) == 0:
        return {"alpha": float("nan"), "r2": float("nan"), "points": int(keep.sum())}
    x, y = np.log(batches[keep]), np.log(decays[keep])
    slope, intercept = np.polyfit(x, y, 1)
    residual = y - (slope * x + intercept)
    r2 = 1.0 - float(residual @ residual) / float(np.sum((y - y.mean()) ** 2))
    return {"alpha": float(slope), "r2": r2, "points": int(keep.sum())}


def gradient_runs(runs: Sequence[RunResult]) -> list[RunResult]:
    """Return the runs that take one gradient step per round at the base learning rate."""
    return [r for r in runs if r.spec.scheme not in MODEL_SCHEMES and r.spec.learning_rate is None]


def decay_check(runs: Sequence[RunResult]) -> dict[str, Any]:
    """Fit Eq. (8) on the gradient runs of one cell; see the module docstring."""
    runs = gradient_runs(runs)
    early = [loss_decays(r) for r in runs]
    points = [
        {
            "scheme": r.spec.scheme,
            "seed": r.spec.seed,
            "mean_global_batch": float(b[:EARLY_ROUNDS].mean()),
            "mean_decay": float(d[:EARLY_ROUNDS].mean()),
        }
        for r, (d, b) in zip(runs, early, strict=True)
    ]
    batches = np.array([p["mean_global_batch"] for p in points])
    decays = np.array([p["mean_decay"] for p in points])
    all_decays = np.concatenate([d for d, _ in early])
    all_batches = np.concatenate([b for _, b in early])
    per_run = fit_sqrt(batches, decays)
    exponent = fit_exponent(batches, decays)
    holds = None
    if len(np.unique(batches)) >= MIN_BATCHES:
        holds = bool(
            per_run["r2"] >= HOLDS_R2 and abs(exponent["alpha"] - 0.5) <= HOLDS_ALPHA_TOLERANCE
        )
    return {
        "early_rounds": EARLY_ROUNDS,
        "runs": points,
        "per_run": per_run,
        "exponent": exponent,
        "per_round": fit_sqrt(all_batches, all_decays),
        "holds": holds,
    }


def verdict(check: dict[str, Any]) -> str:
    """Say whether Eq. (8) holds in a cell, and which part of it does, with the numbers."""
    if check["holds"] is None:
        return (
            f"too few runs with different global batches (at least {MIN_BATCHES}) to judge Eq. (8)."
        )
    per_run, exponent, per_round = check["per_run"], check["exponent"], check["per_round"]
    alpha_ok = abs(exponent["alpha"] - 0.5) <= HOLDS_ALPHA_TOLERANCE
    fit_ok = per_run["r2"] >= HOLDS_R2
    return (
        f"Eq. (8) {'holds' if check['holds'] else 'does not hold'} here. Over the first "
        f"{check['early_rounds']} rounds of {per_run['points']} gradient runs the mean loss "
        f"decay grows as B^{exponent['alpha']:.2f} (log-log R² = {exponent['r2']:.2f}; Eq. 8 "
        f"says B^0.5: {'consistent' if alpha_ok else 'inconsistent'}), and xi sqrt(B) with "
        f"xi = {per_run['xi']:.2g} explains R² = {per_run['r2']:.2f} of it "
        f"({'at least' if fit_ok else 'below'} {HOLDS_R2}"
        f"{'' if fit_ok else ': runs with similar B decay differently'}). "
        f"Round by round, R² = {per_round['r2']:.2f} over {per_round['points']} rounds: "
        "single rounds are dominated by noise."
    )
