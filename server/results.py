"""The results directory: ``rounds.jsonl`` (one object per round) and ``summary.json``."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the CLI reads results files without importing flwr
    from strategy import RoundRecord

ROUNDS_FILE = "rounds.jsonl"
# The keys of a row that depend on the machine, not on the run's config: wall-clock times,
# and where each device ran.
WALL_KEYS = ("wall_time_s", "round_wall_time_s", "wall_phases_s", "places")
SUMMARY_FILE = "summary.json"
# The field of the probe set's training loss (:mod:`server.probe`), in rows that measure it.
PROBE_METRIC = "probe_loss"


def round_row(
    record: RoundRecord,
    evaluation: Mapping[str, float],
    wall_time_s: float,
    round_wall_time_s: float,
    wall_phases_s: Mapping[str, float],
    places: Mapping[str, str],
) -> dict[str, Any]:
    """Return one line of ``rounds.jsonl``.

    The strategy's record, the test metrics, the wall-clock seconds since the ServerApp
    started (``wall_time_s``), those spent on this round (``round_wall_time_s``) and on
    each of its phases (``wall_phases_s``, :class:`~strategy.phases.PhaseClock`), and where
    each participant ran by partition id (``places``: a Ray node id or a host name).
    """
    return {
        **record.to_dict(),
        **evaluation,
        "wall_time_s": wall_time_s,
        "round_wall_time_s": round_wall_time_s,
        "wall_phases_s": dict(wall_phases_s),
        "places": dict(places),
    }


def read_rounds(directory: Path) -> list[dict[str, Any]]:
    """Return the rows of ``directory/rounds.jsonl`` (none if the file does not exist yet)."""
    path = Path(directory) / ROUNDS_FILE
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def evaluated_rows(rows: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """Return the rows of rounds that were evaluated (``eval-every`` skips some)."""
    return [row for row in rows if row["test_accuracy"] is not None]


class ResultsWriter:
    """Writes one run's results into ``directory`` (created).

    ``rounds.jsonl`` is replaced, atomically, by ``rows``: none for a new run, the rounds
    done so far for a resumed one (:mod:`server.checkpoint`). Rows are flushed as they come
    so that a progress display can follow the file.
    """

    def __init__(self, directory: Path, rows: Sequence[Mapping[str, Any]] = ()) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.rounds_path = self.directory / ROUNDS_FILE
        temporary = self.rounds_path.with_name(ROUNDS_FILE + ".tmp")
        temporary.write_text("".join(json.dumps(row) + "\n" for row in rows))
        os.replace(temporary, self.rounds_path)

    def append_round(self, row: Mapping[str, Any]) -> None:
        """Append one round's row to ``rounds.jsonl``."""
        with self.rounds_path.open("a") as stream:
            stream.write(json.dumps(row) + "\n")

    def write_summary(self, summary: Mapping[str, Any]) -> Path:
        """Write ``summary.json`` and return its path."""
        path = self.directory / SUMMARY_FILE
        path.write_text(json.dumps(summary, indent=2) + "\n")
        return path


def device_energy(rows: Sequence[Mapping[str, Any]]) -> dict[str, float]:
    """Return each device's energy over the rounds of ``rows``, by partition id."""
    spent: dict[str, float] = {}
    for row in rows:
        for pid, energy in zip(row["partition_ids"], row["device_energy_j"], strict=True):
            spent[str(pid)] = spent.get(str(pid), 0.0) + energy
    return dict(sorted(spent.items(), key=lambda item: int(item[0])))


def summarize(
    config: Mapping[str, Any],
    rows: list[Mapping[str, Any]],
    initial: Mapping[str, float],
    wall_time_s: float,
    model: Mapping[str, Any],
    stopped: str = "",
) -> dict[str, Any]:
    """Return the content of ``summary.json``.

    Parameters
    ----------
    config
        The full run config.
    rows
        The rows of ``rounds.jsonl``.
    initial
        Test metrics of the initial model (round 0), and its probe loss if measured.
    wall_time_s
        Wall-clock seconds of the whole ServerApp.
    model
        Facts about the model (parameter count, gradient size in bits).
    stopped
        Why training stopped (the rounds, the time budget, or divergence).
    """
    last = rows[-1] if rows else {}
    evaluated = evaluated_rows(rows)
    return {
        "config": dict(config),
        "model": dict(model),
        "rounds": len(rows),
        "stopped": stopped,
        "initial_test_loss": initial["test_loss"],
        "initial_test_accuracy": initial["test_accuracy"],
        **({f"initial_{PROBE_METRIC}": initial[PROBE_METRIC]} if PROBE_METRIC in initial else {}),
        "final_test_loss": evaluated[-1]["test_loss"] if evaluated else None,
        "final_test_accuracy": evaluated[-1]["test_accuracy"] if evaluated else None,
        "best_test_accuracy": max((r["test_accuracy"] for r in evaluated), default=None),
        "sim_time_s": last.get("sim_time_s", 0.0),
        "sim_energy_j": last.get("sim_energy_j", 0.0),
        "device_energy_j": device_energy(rows),
        "wall_time_s": wall_time_s,
        "mean_round_wall_time_s": (
            sum(r["round_wall_time_s"] for r in rows) / len(rows) if rows else None
        ),
    }
