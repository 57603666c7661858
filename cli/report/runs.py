"""Find and read the runs a report compares: each a directory with the results files.

A run directory holds ``summary.json`` and ``rounds.jsonl`` (:mod:`server.results`), as
``feel simulate``, ``feel deploy-local`` and each run of ``feel compare`` write them; a
``feel compare`` output holds many, under ``runs/``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cli.errors import UsageError
from server.results import ROUNDS_FILE, SUMMARY_FILE, read_rounds

# The x axes of the curves: the rows' cumulative simulated time and energy.
TIME = "sim_time_s"
ENERGY = "sim_energy_j"


@dataclass(frozen=True)
class Run:
    """One finished run: its label in the report, ``rounds.jsonl`` rows and ``summary.json``."""

    label: str
    directory: Path
    rows: list[dict[str, Any]]
    summary: dict[str, Any]

    @property
    def config(self) -> dict[str, Any]:
        """The run config of ``summary.json``."""
        return self.summary.get("config", {})

    def has(self, axis: str) -> bool:
        """Whether every row records ``axis`` (runs from before energy was recorded do not)."""
        return bool(self.rows) and all(row.get(axis) is not None for row in self.rows)

    def curve(self, key: str, axis: str) -> tuple[list[float], list[float]]:
        """Return ``axis`` and metric ``key`` over the evaluated rounds, from the initial model.

        The initial model (``summary.json``'s ``initial_<key>``) is drawn at 0 s and 0 J.
        """
        rows = [row for row in self.rows if row.get(key) is not None]
        xs = [0.0] + [float(row[axis]) for row in rows]
        ys = [float(self.summary[f"initial_{key}"])] + [float(row[key]) for row in rows]
        return xs, ys


def is_run(directory: Path) -> bool:
    """Whether ``directory`` holds a finished run's ``summary.json`` and ``rounds.jsonl``."""
    return (directory / SUMMARY_FILE).is_file() and (directory / ROUNDS_FILE).is_file()


def run_directories(path: Path) -> list[Path]:
    """Return ``path`` if it is a run directory, else the run directories below it, sorted.

    Raises
    ------
    UsageError
        If ``path`` is no directory or holds no run.
    """
    if not path.is_dir():
        raise UsageError("RUN_DIR", f"{path}: no such directory")
    if is_run(path):
        return [path]
    found = sorted(summary.parent for summary in path.rglob(SUMMARY_FILE) if is_run(summary.parent))
    if not found:
        raise UsageError(
            "RUN_DIR", f"{path}: no run here or below (no {SUMMARY_FILE} with a {ROUNDS_FILE})"
        )
    return found


def _read(directory: Path, label: str) -> Run:
    """Read the run in ``directory``; a file that is not JSON is a usage error naming it."""
    try:
        summary = json.loads((directory / SUMMARY_FILE).read_text())
        rows = read_rounds(directory)
    except ValueError as exc:
        raise UsageError("RUN_DIR", f"{directory}: unreadable results file: {exc}") from None
    return Run(label, directory, rows, summary)


def load_runs(paths: Sequence[Path]) -> list[Run]:
    """Read every run in or below ``paths``, each labelled by its path below their common parent.

    Two run directories ``results/a`` and ``results/b`` are ``a`` and ``b``; the runs of a
    ``feel compare`` output are ``K6-iid/seed0/proposed`` and so on. A run found twice is
    read once.
    """
    directories = list(
        dict.fromkeys(d.resolve() for path in paths for d in run_directories(Path(path)))
    )
    parent = Path(os.path.commonpath([d.parent for d in directories]))
    return [_read(d, d.relative_to(parent).as_posix()) for d in directories]
