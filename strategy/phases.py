"""Wall-clock time of each phase of a round, to see where a run's time goes."""

from __future__ import annotations

import time
from itertools import pairwise

# The marks of one round, in order; a phase runs from the mark before its own.
MARKS = ("start", "query", "schedule", "train", "aggregate", "evaluate")


class PhaseClock:
    """Marks taken as a round goes; :meth:`phases` gives the seconds between them.

    The strategy marks ``start`` (``configure_train`` called), ``query`` (profiles in),
    ``schedule`` (train messages built), ``train`` (replies in: sending, local compute and
    receiving) and ``aggregate`` (update applied); the ServerApp's ``evaluate_fn`` marks
    ``evaluate`` (test-set evaluation, or none).
    """

    def __init__(self) -> None:
        self._marks: dict[str, float] = {}

    def mark(self, name: str) -> None:
        """Record that the phase ending at ``name`` (one of :data:`MARKS`) ended now.

        Raises
        ------
        ValueError
            If ``name`` is not in :data:`MARKS`.
        """
        if name not in MARKS:
            raise ValueError(f"unknown mark {name!r}; known: {', '.join(MARKS)}")
        if name == MARKS[0]:
            self._marks.clear()
        self._marks[name] = time.monotonic()

    def phases(self) -> dict[str, float]:
        """Seconds of each phase marked this round, keyed by its end mark."""
        ends = [m for m in MARKS if m in self._marks]
        return {end: self._marks[end] - self._marks[begin] for begin, end in pairwise(ends)}
