"""How long a round waits for its devices, and which devices it stops waiting for.

A phase of a round (the profile query, the train messages) goes on once a quorum of its
devices has replied and a grace period has passed, or at the round timeout; a device that
stays silent round after round is dropped from the run. On a simulation grid every device
replies, late or not, so the quorum is off there: a simulated round does not depend on how
fast the machine is.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field, replace

# Why a device without a reply is left out, by what ended the wait.
TIMED_OUT = "no reply before the timeout"
GRACE_OVER = "no reply within the grace period after a quorum"


@dataclass(frozen=True)
class Deadlines:
    """The waits of a run (run config ``connect-timeout-s``, ``round-timeout-s``, ...).

    Attributes
    ----------
    connect_s
        Seconds to wait for ``min-nodes`` devices to connect before the first round.
    round_s
        Seconds a phase waits for its replies at most.
    quorum
        Fraction of a phase's devices whose replies start the grace period (1: all).
    grace_s
        Seconds the other devices get once the quorum is in.
    max_silent_rounds
        Rounds in a row without a reply after which a device is dropped (0: never).
    """

    connect_s: float = 600.0
    round_s: float = 300.0
    quorum: float = 0.5
    grace_s: float = 30.0
    max_silent_rounds: int = 3

    def quorum_of(self, devices: int) -> int | None:
        """Return the replies of ``devices`` after which the grace starts (None: wait for all)."""
        return None if self.quorum >= 1 else math.ceil(self.quorum * devices)

    def without_quorum(self) -> Deadlines:
        """Return these deadlines waiting for every reply (a simulation grid's)."""
        return replace(self, quorum=1.0)


@dataclass
class Attendance:
    """Which devices replied in each round, and those dropped for silence.

    Attributes
    ----------
    silent
        Node id -> rounds in a row in which it was asked and did not reply.
    dropped
        The nodes no longer asked: silent for ``max_silent_rounds`` rounds in a row.
    """

    max_silent_rounds: int = 3
    silent: Counter[int] = field(default_factory=Counter)
    dropped: set[int] = field(default_factory=set)
    _missed: set[int] = field(default_factory=set)
    _asked: set[int] = field(default_factory=set)

    def asked(self, node_ids: Iterable[int], replied: Iterable[int]) -> None:
        """Note that ``node_ids`` were asked this round, of which ``replied`` replied."""
        node_ids = set(node_ids)
        self._asked |= node_ids
        self._missed |= node_ids - set(replied)

    def close_round(self) -> list[int]:
        """End the round's count; return the nodes dropped now."""
        for node_id in self._asked:
            self.silent[node_id] = self.silent[node_id] + 1 if node_id in self._missed else 0
        limit = self.max_silent_rounds
        newly = sorted(n for n in self._asked if limit and self.silent[n] >= limit)
        self.dropped |= set(newly)
        self._asked, self._missed = set(), set()
        return newly
