"""A round's record, as the strategy writes it, for tests of what reads records."""

from __future__ import annotations

from typing import Any

from strategy import RoundRecord


def round_record(round_: int, sim_time_s: float, **fields: Any) -> RoundRecord:
    """A record of two devices that both took part in round ``round_``, ``fields`` replaced.

    The energy spent so far is 0.25 J a round.
    """
    values: dict[str, Any] = {
        "round": round_,
        "policy": "optimal",
        "sim_time_s": sim_time_s,
        "round_latency_s": 0.5,
        "compute_latency_s": 0.3,
        "uplink_latency_s": 0.1,
        "downlink_latency_s": 0.1,
        "partition_ids": [0, 1],
        "participants": [0, 1],
        "excluded": {},
        "batch_sizes": [10, 20],
        "uplink_slots_s": [0.004, 0.006],
        "downlink_slots_s": [0.005, 0.005],
        "global_batch": 30,
        "learning_rate": 0.07,
        "efficiency": 10.9,
        "train_loss": 1.5,
        "sim_energy_j": 0.25 * round_,
        "energy_j": 0.25,
        "compute_energy_j": 0.2,
        "upload_energy_j": 0.05,
        "idle_energy_j": 0.0,
        "device_energy_j": [0.1, 0.15],
    }
    return RoundRecord(**(values | fields))
