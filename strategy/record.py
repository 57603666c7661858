"""What one communication round did: schedule, simulated latency (Eq. 15) and update."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass

from flwr.app import MetricRecord


@dataclass(frozen=True)
class LatencySplit:
    """Round latency of Eq. (15) along the allocation's critical path.

    Attributes
    ----------
    compute_s
        Local gradient calculation (Eq. 9) plus local model update (Eq. 12).
    uplink_s
        Local gradient upload (Eq. 10).
    downlink_s
        Global gradient download (Eq. 11).
    """

    compute_s: float
    uplink_s: float
    downlink_s: float

    @classmethod
    def from_critical_path(cls, path: Mapping[str, float]) -> LatencySplit:
        """Split ``Allocation.critical_path`` (compute_s, upload_s, download_s, update_s)."""
        return cls(
            compute_s=float(path["compute_s"] + path["update_s"]),
            uplink_s=float(path["upload_s"]),
            downlink_s=float(path["download_s"]),
        )


@dataclass(frozen=True)
class RoundRecord:
    """One round as the strategy saw it; per-device lists are in partition-id order.

    ``partition_ids`` are the devices scheduled, ``participants`` those whose update was
    applied, and ``excluded`` maps each other scheduled partition id to the reason. The
    latencies, the efficiency and the energy count the participants only: a scheduled
    device that took no part has 0 in ``device_energy_j`` (:mod:`scheduler.energy`).
    """

    round: int
    policy: str
    sim_time_s: float
    round_latency_s: float
    compute_latency_s: float
    uplink_latency_s: float
    downlink_latency_s: float
    partition_ids: list[int]
    participants: list[int]
    excluded: dict[str, str]
    batch_sizes: list[int]
    uplink_slots_s: list[float]
    downlink_slots_s: list[float]
    global_batch: int
    learning_rate: float
    efficiency: float
    train_loss: float
    sim_energy_j: float
    energy_j: float
    compute_energy_j: float
    upload_energy_j: float
    idle_energy_j: float
    device_energy_j: list[float]

    def to_dict(self) -> dict:
        """Return a JSON-ready dict with snake_case keys."""
        return dataclasses.asdict(self)

    def to_metric_record(self) -> MetricRecord:
        """Return the numeric fields as a Flower MetricRecord with kebab-case keys."""
        return MetricRecord(
            {
                key.replace("_", "-"): value
                for key, value in self.to_dict().items()
                if not isinstance(value, str | dict)
            }
        )
