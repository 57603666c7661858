"""Table II from the runs' ``rounds.jsonl``: final accuracy, time and energy to target, speedup.

Everything here is computed from the rows of ``rounds.jsonl`` (and the initial test metrics
of ``summary.json``), so the table can be checked against those files.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from cli.compare.settings import REFERENCE_SCHEME, RunSpec
from server.results import SUMMARY_FILE, evaluated_rows, read_rounds


@dataclass(frozen=True)
class RunResult:
    """One finished run: its spec, ``rounds.jsonl`` rows and ``summary.json``."""

    spec: RunSpec
    rows: list[dict[str, Any]]
    summary: dict[str, Any]

    @classmethod
    def load(cls, spec: RunSpec, root: Path) -> RunResult:
        """Read the run of ``spec`` under ``root``."""
        directory = spec.directory(root)
        summary = json.loads((directory / SUMMARY_FILE).read_text())
        return cls(spec, read_rounds(directory), summary)

    @property
    def final_accuracy(self) -> float:
        """Test accuracy after the last round evaluated (the initial one if none was)."""
        rows = evaluated_rows(self.rows)
        return float(rows[-1]["test_accuracy"]) if rows else self.summary["initial_test_accuracy"]

    def time_to(self, target: float) -> float | None:
        """Return the simulated time when test accuracy first reaches ``target`` (None: never).

        Only evaluated rounds count (``eval-every-s`` skips some).
        """
        return self._on_reaching(target, "sim_time_s")

    def energy_to(self, target: float) -> float | None:
        """Return the devices' energy spent when test accuracy first reaches ``target``."""
        return self._on_reaching(target, "sim_energy_j")

    def _on_reaching(self, target: float, field: str) -> float | None:
        """Return ``field`` of the first evaluated round whose test accuracy reaches ``target``."""
        rows = evaluated_rows(self.rows)
        return next((float(r[field]) for r in rows if r["test_accuracy"] >= target), None)

    def curve(self, key: str, axis: str = "sim_time_s") -> tuple[np.ndarray, np.ndarray]:
        """Return ``axis`` (``sim_time_s``, ``sim_energy_j``) and ``key`` from the start."""
        rows = [r for r in self.rows if r.get(key) is not None]  # the rounds that measured it
        times = [0.0] + [r[axis] for r in rows]
        values = [self.summary[f"initial_{key}"]] + [r[key] for r in rows]
        return np.asarray(times), np.asarray(values)


def summarize_values(values: list[float]) -> dict[str, float | int] | None:
    """Mean, sample standard deviation (0 for one value) and count; None for no values."""
    if not values:
        return None
    std = float(np.std(values, ddof=1)) if len(values) > 1 else 0.0
    return {"mean": float(np.mean(values)), "std": std, "n": len(values)}


def scheme_row(
    scheme: str, runs: list[RunResult], reference: dict[int, float | None], target: float
) -> dict[str, Any]:
    """One scheme's line of the table, over its runs (one per seed).

    ``reference`` maps each seed to individual learning's time to target; the speedup of a
    seed is that time over the scheme's, where both reached the target.
    """
    times = {r.spec.seed: r.time_to(target) for r in runs}
    speedups = [
        reference[seed] / time
        for seed, time in times.items()
        if time is not None and reference.get(seed) is not None
    ]
    reached = [t for t in times.values() if t is not None]
    energies = [e for e in (r.energy_to(target) for r in runs) if e is not None]
    return {
        "scheme": scheme,
        "learning_rate": runs[0].summary["config"]["learning-rate"],
        "runs": len(runs),
        "final_accuracy": summarize_values([r.final_accuracy for r in runs]),
        "time_to_target_s": summarize_values(reached),
        "energy_to_target_j": summarize_values(energies),
        "reached": len(reached),
        "speedup": summarize_values(speedups),
        "rounds": summarize_values([len(r.rows) for r in runs]),
        "round_latency_s": summarize_values(
            [float(np.mean([row["round_latency_s"] for row in r.rows])) for r in runs]
        ),
    }


def _rank(row: dict[str, Any]) -> tuple[int, float, float]:
    """Order of a scheme's rows over the learning rates: best first (see :func:`best_runs`)."""
    time = row["time_to_target_s"]["mean"] if row["time_to_target_s"] else math.inf
    return (-row["reached"], time, -row["final_accuracy"]["mean"])


def best_runs(
    runs: list[RunResult], schemes: list[str], target: float
) -> dict[str, list[RunResult]]:
    """Return each scheme's runs at its own best base learning rate eta0 of the grid.

    Best: the most seeds reaching ``target``, then the shortest mean time to it, then the
    highest mean final accuracy; a tie goes to the eta0 that comes first in ``runs``.
    """
    best = {}
    for scheme in schemes:
        groups: dict[float | None, list[RunResult]] = {}
        for run in runs:
            if run.spec.scheme == scheme:
                groups.setdefault(run.spec.learning_rate, []).append(run)
        if groups:
            rows = {rate: scheme_row(scheme, group, {}, target) for rate, group in groups.items()}
            best[scheme] = groups[min(groups, key=lambda rate: _rank(rows[rate]))]
    return best


def cell_table(runs: list[RunResult], schemes: list[str], target: float) -> list[dict]:
    """Return the table of one cell: one row per scheme, at the scheme's best eta0."""
    by_scheme = best_runs(runs, schemes, target)
    reference = {r.spec.seed: r.time_to(target) for r in by_scheme.get(REFERENCE_SCHEME, [])}
    return [scheme_row(s, by_scheme[s], reference, target) for s in schemes if s in by_scheme]


def _mean_std(value: dict | None, scale: float = 1.0, digits: int = 2, unit: str = "") -> str:
    """``mean ± std`` (or just the mean for one run) of a summarized value."""
    if value is None:
        return "—"
    mean = f"{value['mean'] * scale:.{digits}f}"
    if value["n"] > 1:
        return f"{mean} ± {value['std'] * scale:.{digits}f}{unit}"
    return f"{mean}{unit}"


def markdown_table(rows: list[dict], target: float) -> str:
    """Render a cell's table as Markdown."""
    header = (
        f"| Scheme | eta0 | Final test accuracy | Time to {target:.0%} (simulated s) | "
        f"Energy to {target:.0%} (J) | Training speedup | Rounds | Mean round latency (s) |\n"
        "|---|---|---|---|---|---|---|---|\n"
    )
    lines = []
    for row in rows:
        time = _mean_std(row["time_to_target_s"])
        if row["reached"] < row["runs"]:
            time = (
                f"{time} ({row['reached']}/{row['runs']} reached)"
                if row["reached"]
                else "not reached"
            )
        speedup = _mean_std(row["speedup"], unit="×")
        lines.append(
            f"| {row['scheme']} | {row['learning_rate']:g} | "
            f"{_mean_std(row['final_accuracy'], 100, 1, '%')} | {time} | "
            f"{_mean_std(row['energy_to_target_j'], digits=3)} | {speedup} | "
            f"{_mean_std(row['rounds'], digits=0)} | "
            f"{_mean_std(row['round_latency_s'], digits=3)} |"
        )
    return header + "\n".join(lines) + "\n"
