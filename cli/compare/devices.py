"""The proposed scheme's batches and slots against each device's speed and rate (Remarks 2-3).

Remark 2: the optimal batch grows with the local training speed f_k / C (and with the uplink
rate). Remark 3: the uplink slot shrinks as the uplink rate grows and as the training speed
grows. The device facts are those the ClientApp reports: the fleet of the run config.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.stats import spearmanr

from cli.compare.table import RunResult


@dataclass(frozen=True)
class DeviceAllocation:
    """Per device (partition order): speed, rate and the mean batch and slot over the rounds.

    Attributes
    ----------
    speed
        Training speed in samples per second: f_k / C on a CPU, 1 / c_k on a GPU (Eq. 27).
    uplink_rate_bps
        Average uplink rate R_k^U of Eq. (5).
    batch, batch_std
        Mean and standard deviation over the rounds of B_k.
    slot_s, slot_std_s
        Mean and standard deviation over the rounds of tau_k^U.
    """

    speed: np.ndarray
    uplink_rate_bps: np.ndarray
    batch: np.ndarray
    batch_std: np.ndarray
    slot_s: np.ndarray
    slot_std_s: np.ndarray


def device_facts(config: dict[str, Any], clients: int) -> tuple[np.ndarray, np.ndarray]:
    """Training speed and average uplink rate of each device of the run config."""
    from client.local import Node, device
    from scheduler.channel import average_rate_bps
    from server.build import channel_params

    speeds, rates = [], []
    for pid in range(clients):
        node_config = {"partition-id": pid, "num-partitions": clients}
        facts = device(Node.from_context(node_config, config))
        compute = facts.compute
        if facts.scenario == "cpu":
            speeds.append(compute.cpu_hz / compute.cycles_per_sample)
        else:
            speeds.append(1.0 / compute.latency_slope_s)
        rates.append(float(average_rate_bps(facts.path_gain, channel_params(config))))
    return np.asarray(speeds), np.asarray(rates)


def device_allocation(run: RunResult) -> DeviceAllocation:
    """Each device's facts and its mean batch and uplink slot over the run's rounds."""
    speed, rate = device_facts(run.summary["config"], run.spec.clients)
    batches = np.array([r["batch_sizes"] for r in run.rows], dtype=float)
    slots = np.array([r["uplink_slots_s"] for r in run.rows], dtype=float)
    return DeviceAllocation(
        speed=speed,
        uplink_rate_bps=rate,
        batch=batches.mean(axis=0),
        batch_std=batches.std(axis=0),
        slot_s=slots.mean(axis=0),
        slot_std_s=slots.std(axis=0),
    )


def _rho(x: np.ndarray, y: np.ndarray) -> float:
    """Spearman rank correlation, nan when either side is constant."""
    if np.ptp(x) == 0 or np.ptp(y) == 0:
        return float("nan")
    return float(spearmanr(x, y).statistic)


def _within_tiers(values: np.ndarray, speed: np.ndarray) -> np.ndarray:
    """``values`` minus the mean of the devices with the same training speed."""
    _, tier = np.unique(np.round(speed, 6), return_inverse=True)
    means = np.bincount(tier, weights=values) / np.bincount(tier)
    return values - means[tier]


def remark_correlations(allocation: DeviceAllocation) -> dict[str, float]:
    """Spearman correlations behind Remarks 2-3.

    Remark 2 expects batch vs speed and batch vs rate to be positive, Remark 3 slot vs rate
    to be negative. ``*_same_speed`` compare devices of equal speed only (deviations from
    their speed tier's mean), which separates the rate's effect from the speed's: batches
    grow with speed, and a larger batch needs a larger slot.
    """
    a = allocation
    rate = _within_tiers(a.uplink_rate_bps, a.speed)
    return {
        "batch_vs_speed": _rho(a.batch, a.speed),
        "batch_vs_rate": _rho(a.batch, a.uplink_rate_bps),
        "batch_vs_rate_same_speed": _rho(_within_tiers(a.batch, a.speed), rate),
        "slot_vs_rate": _rho(a.slot_s, a.uplink_rate_bps),
        "slot_vs_rate_same_speed": _rho(_within_tiers(a.slot_s, a.speed), rate),
        "slot_vs_speed": _rho(a.slot_s, a.speed),
    }
