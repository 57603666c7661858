"""Table II from the runs' ``rounds.jsonl``: final accuracy, time to target, training speedup.

Everything here is computed from the rows of ``rounds.jsonl`` (and the initial test metrics
of ``summary.json``), so the table can be checked against those files.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from cli.compare.settings import REFERENCE_SCHEME, RunSpec
from server.results import SUMMARY_FILE, read_rounds


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
        """Test accuracy after the last round."""
        return float(self.rows[-1]["test_accuracy"])

    def time_to(self, target: float) -> float | None:
        """Return the simulated time when test accuracy first reaches ``target`` (None: never)."""
        return next(
            (float(r["sim_time_s"]) for r in self.rows if r["test_accuracy"] >= target), None
        )

    def curve(self, key: str) -> tuple[np.ndarray, np.ndarray]:
        """Return simulated time and ``key`` (``test_loss``, ``test_accuracy``) from time 0."""
        times = [0.0] + [r["sim_time_s"] for r in self.rows]
        values = [self.summary[f"initial_{key}"]] + [r[key] for r in self.rows]
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
    return {
        "scheme": scheme,
        "runs": len(runs),
        "final_accuracy": summarize_values([r.final_accuracy for r in runs]),
        "time_to_target_s": summarize_values(reached),
        "reached": len(reached),
        "speedup": summarize_values(speedups),
        "rounds": summarize_values([len(r.rows) for r in runs]),
        "round_latency_s": summarize_values(
            [float(np.mean([row["round_latency_s"] for row in r.rows])) for r in runs]
        ),
    }


def cell_table(runs: list[RunResult], schemes: list[str], target: float) -> list[dict]:
    """Return the table of one cell: one row per scheme (main runs, not the sweep)."""
    by_scheme = {s: [r for r in runs if r.spec.scheme == s] for s in schemes}
    reference = {r.spec.seed: r.time_to(target) for r in by_scheme.get(REFERENCE_SCHEME, [])}
    return [scheme_row(s, by_scheme[s], reference, target) for s in schemes if by_scheme[s]]


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
        f"| Scheme | Final test accuracy | Time to {target:.0%} (simulated s) | "
        "Training speedup | Rounds | Mean round latency (s) |\n"
        "|---|---|---|---|---|---|\n"
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
            f"| {row['scheme']} | {_mean_std(row['final_accuracy'], 100, 1, '%')} | {time} | "
            f"{speedup} | {_mean_std(row['rounds'], digits=0)} | "
            f"{_mean_std(row['round_latency_s'], digits=3)} |"
        )
    return header + "\n".join(lines) + "\n"
