"""What the FEEL round loop passes between its steps: plan, update, state, result."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
from flwr.app import ArrayRecord, MetricRecord
from flwr.serverapp.strategy import Result

from scheduler import Allocation, Instance
from strategy.record import LatencySplit, RoundRecord
from task.arrays import record_views
from task.protocol import ProfileReport


@dataclass(frozen=True)
class RoundPlan:
    """Step 2's output: the devices of a round and their schedule, in partition-id order.

    Attributes
    ----------
    server_round
        The round.
    node_ids, partition_ids
        The devices that train.
    profiles
        Every usable profile report of the round, by node id (trained or not).
    instance, allocation
        The scheduler's instance and the allocation of batches and slots.
    arrays
        The global model the round starts from.
    excluded
        Devices left out at the profile query, by partition id, with the reason.
    """

    server_round: int
    node_ids: list[int]
    partition_ids: list[int]
    profiles: dict[int, ProfileReport]
    instance: Instance
    allocation: Allocation
    arrays: ArrayRecord
    excluded: dict[str, str] = field(default_factory=dict)

    @cached_property
    def model(self) -> dict[str, np.ndarray]:
        """The global model sent this round, decoded once (for resnet18, 45 MB)."""
        return record_views(self.arrays)

    def partition_of(self, node_id: int) -> int:
        """Return the partition id of the device on ``node_id``."""
        return self.partition_ids[self.node_ids.index(node_id)]


@dataclass(frozen=True)
class DeviceUpdate:
    """One device's checked train reply, and where the device says it ran."""

    node_id: int
    partition_id: int
    weight: int
    loss: float
    arrays: dict[str, np.ndarray]
    buffers: dict[str, np.ndarray]
    place: str


# The parts of a device's energy (scheduler.DeviceEnergy's fields).
ENERGY_PARTS = ("compute_j", "upload_j", "idle_j")


@dataclass(frozen=True)
class Charge:
    """What a round costs on the simulated clock.

    Attributes
    ----------
    partition_ids
        The devices scheduled; ``scheduled`` lists their batches and slots.
    participants
        Those whose update was applied; ``charged`` holds their latencies (Eq. 15).
    """

    partition_ids: list[int]
    participants: list[int]
    scheduled: Allocation
    charged: Allocation

    def device_energy_j(self) -> dict[str, list[float]]:
        """Each scheduled device's energy by part, 0 for a non-participant.

        The parts are :class:`scheduler.DeviceEnergy`'s (``compute_j``, ``upload_j``,
        ``idle_j``); ``charged`` holds either the participants or every scheduled device.
        """
        charged = self.charged
        devices = (
            self.participants
            if len(charged.batch_sizes) < len(self.partition_ids)
            else self.partition_ids
        )
        taking_part = set(self.participants)
        parts = {}
        for part in ENERGY_PARTS:
            spent = dict(zip(devices, getattr(charged.energy, part), strict=True))
            parts[part] = [
                float(spent[pid]) if pid in taking_part else 0.0 for pid in self.partition_ids
            ]
        return parts


@dataclass(frozen=True)
class RoundUpdate:
    """Step 5's output: the new global model (None: unchanged) and the round's summary."""

    arrays: ArrayRecord | None
    charge: Charge
    global_batch: int
    learning_rate: float
    train_loss: float

    def record(
        self, server_round: int, excluded: dict[str, str], sim_time_s: float, spent_j: float
    ) -> RoundRecord:
        """Return the round's record, the clock at ``sim_time_s`` once it is charged.

        The devices had spent ``spent_j`` before the round.
        """
        charge = self.charge
        split = LatencySplit.from_critical_path(charge.charged.critical_path)
        parts = charge.device_energy_j()
        device_j = [sum(spent) for spent in zip(*parts.values(), strict=True)]
        return RoundRecord(
            round=server_round,
            policy=str(charge.charged.policy),
            sim_time_s=sim_time_s,
            round_latency_s=float(charge.charged.round_latency_s),
            compute_latency_s=split.compute_s,
            uplink_latency_s=split.uplink_s,
            downlink_latency_s=split.downlink_s,
            partition_ids=list(charge.partition_ids),
            participants=list(charge.participants),
            excluded=excluded,
            batch_sizes=[int(b) for b in charge.scheduled.batch_sizes],
            uplink_slots_s=[float(t) for t in charge.scheduled.uplink_slots_s],
            downlink_slots_s=[float(t) for t in charge.scheduled.downlink_slots_s],
            global_batch=self.global_batch,
            learning_rate=self.learning_rate,
            efficiency=float(charge.charged.efficiency),
            train_loss=self.train_loss,
            sim_energy_j=spent_j + sum(device_j),
            energy_j=sum(device_j),
            compute_energy_j=sum(parts["compute_j"]),
            upload_energy_j=sum(parts["upload_j"]),
            idle_energy_j=sum(parts["idle_j"]),
            device_energy_j=device_j,
        )


@dataclass
class TrainingState:
    """What the loop carries from round to round, and what a resumed run starts from.

    Attributes
    ----------
    sim_time_s
        The simulated clock.
    sim_energy_j
        The devices' energy spent so far.
    cursors
        Examples each partition has consumed so far (sent as ``sample-cursor``).
    records
        One record per finished round.
    """

    sim_time_s: float = 0.0
    cursors: dict[int, int] = field(default_factory=dict)
    records: list[RoundRecord] = field(default_factory=list)
    sim_energy_j: float = 0.0

    @property
    def round(self) -> int:
        """The last finished round (0 before the first)."""
        return self.records[-1].round if self.records else 0

    def to_dict(self) -> dict[str, Any]:
        """Return the state, JSON-ready."""
        return {
            "sim_time_s": self.sim_time_s,
            "sim_energy_j": self.sim_energy_j,
            "cursors": {str(pid): cursor for pid, cursor in self.cursors.items()},
            "records": [record.to_dict() for record in self.records],
        }

    @classmethod
    def from_dict(cls, state: Mapping[str, Any]) -> TrainingState:
        """Read the state of :meth:`to_dict`."""
        return cls(
            float(state["sim_time_s"]),
            {int(pid): int(cursor) for pid, cursor in state["cursors"].items()},
            [RoundRecord(**record) for record in state["records"]],
            float(state["sim_energy_j"]),
        )


@dataclass(frozen=True)
class FinishedRound:
    """What the round hooks get once a round is applied and evaluated.

    Attributes
    ----------
    record
        The round's record.
    arrays
        The global model after the round.
    metrics
        The centralized evaluation of ``arrays``; None if not evaluated this round.
    state
        The loop's state after the round (:meth:`TrainingState.to_dict`).
    phases
        Wall-clock seconds of the round's phases (:class:`strategy.phases.PhaseClock`).
    places
        Where each participant ran, by partition id (:func:`task.protocol.reply_place`).
    last
        Whether the run stops after this round.
    """

    record: RoundRecord
    arrays: ArrayRecord
    metrics: MetricRecord | None
    state: dict[str, Any]
    phases: dict[str, float]
    places: dict[str, str]
    last: bool


RoundHook = Callable[[FinishedRound], None]


@dataclass(frozen=True)
class EvaluationSchedule:
    """Which rounds are evaluated: every ``every_rounds``-th, or on a simulated-time grid.

    With ``every_s`` > 0, a round is due when the simulated clock crosses a multiple of
    ``every_s`` during it, so schemes of any round latency are evaluated at the same
    simulated times (up to one round); otherwise every ``every_rounds``-th round is. The
    last round is always due.
    """

    every_rounds: int = 1
    every_s: float = 0.0

    def due(self, server_round: int, start_s: float, end_s: float, last: bool) -> bool:
        """Whether the round that moved the clock from ``start_s`` to ``end_s`` is evaluated."""
        if last:
            return True
        if self.every_s > 0:
            return math.floor(end_s / self.every_s) > math.floor(start_s / self.every_s)
        return server_round % self.every_rounds == 0


# Centralized evaluation of the global model after a round, as in Flower's Strategy.start.
EvaluateFn = Callable[[int, ArrayRecord], MetricRecord | None]


@dataclass
class FeelResult(Result):
    """Flower's ``Result``, plus the simulated clock, the round records and why it stopped."""

    sim_time_s: float = 0.0
    records: list[RoundRecord] = field(default_factory=list)
    stopped: str = ""

    def evaluate(
        self,
        evaluate_fn: EvaluateFn | None,
        server_round: int,
        arrays: ArrayRecord,
        due: bool = True,
    ) -> MetricRecord | None:
        """Evaluate ``arrays`` centrally if ``evaluate_fn`` is given and the round is due."""
        if evaluate_fn is None or not due:
            return None
        metrics = evaluate_fn(server_round, arrays)
        if metrics is not None:
            self.evaluate_metrics_serverapp[server_round] = metrics
        return metrics
