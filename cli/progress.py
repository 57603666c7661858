"""Follow a run's ``rounds.jsonl`` and show one line per round."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any


class RoundsTail:
    """Read the complete rows appended to a JSON-lines file since the last poll."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.offset = 0

    def poll(self) -> list[dict[str, Any]]:
        """Return the rows completed since the last call (none if the file is missing)."""
        if not self.path.exists():
            return []
        with self.path.open("rb") as stream:
            stream.seek(self.offset)
            data = stream.read()
        complete = data[: data.rfind(b"\n") + 1]
        self.offset += len(complete)
        return [json.loads(line) for line in complete.splitlines() if line.strip()]


def round_line(row: Mapping[str, Any], rounds: int) -> str:
    """Return the progress line of one round: round, simulated time, accuracy, loss, batch."""
    evaluated = row["test_accuracy"] is not None  # see eval-every
    return (
        f"round {row['round']:>{len(str(rounds))}}/{rounds}  "
        f"simulated {row['sim_time_s']:9.2f} s  "
        + (
            f"accuracy {row['test_accuracy']:7.2%}  loss {row['test_loss']:.4f}  "
            if evaluated
            else "not evaluated                  "
        )
        + f"global batch {row['global_batch']}"
    )
