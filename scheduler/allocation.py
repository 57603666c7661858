"""Allocation results, evaluated from first principles (Eq. 10-16 and 29)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from scheduler.energy import DeviceEnergy, device_energy, listening
from scheduler.instance import Instance
from scheduler.latency import (
    compute_s,
    downlink_airtime_s,
    min_max_finish,
    update_s,
    uplink_airtime_s,
)


@dataclass(frozen=True, eq=False)
class Allocation:
    """Batch sizes and TDMA slots for one round, with what the system model gives for them.

    Attributes
    ----------
    batch_sizes
        Integer batch size of each device (device order).
    uplink_slots_s, downlink_slots_s
        Time slots tau_k^U and tau_k^D within one frame.
    uplink_latency_s
        max_k(t_k^L + t_k^U): computation and upload, the first term of Eq. (15)/(29).
    downlink_latency_s
        max_k(t_k^D + t_k^M): download and model update, the second term.
    round_latency_s
        Their sum T (Eq. 15).
    global_batch
        B = sum_k B_k.
    efficiency
        Learning efficiency sqrt(B) / T (Eq. 16 with Eq. 8, xi = 1).
    relaxed_efficiency
        Optimum of the relaxed problem (real batch sizes, P1 or P6): an upper bound on the
        efficiency of every allocation of this instance. ``nan`` when not computed.
    policy
        Name of the policy that produced it.
    energy
        Each device's computation and upload energy (:mod:`scheduler.energy`).
    critical_path
        compute_s and upload_s of the device that ends the uplink phase, download_s and
        update_s of the device that ends the downlink phase (the first by index among devices
        that end it together, :func:`last_to_finish`); they sum to round_latency_s.
    """

    batch_sizes: np.ndarray
    uplink_slots_s: np.ndarray
    downlink_slots_s: np.ndarray
    uplink_latency_s: float
    downlink_latency_s: float
    round_latency_s: float
    global_batch: int
    efficiency: float
    relaxed_efficiency: float
    policy: str
    energy: DeviceEnergy
    critical_path: dict[str, float] = field(default_factory=dict)

    @property
    def gap(self) -> float:
        """Relative gap 1 - efficiency / relaxed_efficiency (an upper bound on suboptimality)."""
        return 1.0 - self.efficiency / self.relaxed_efficiency

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON allocation contract."""
        return {
            "batch_sizes": [int(b) for b in self.batch_sizes],
            "uplink_slots_s": [float(t) for t in self.uplink_slots_s],
            "downlink_slots_s": [float(t) for t in self.downlink_slots_s],
            "uplink_latency_s": self.uplink_latency_s,
            "downlink_latency_s": self.downlink_latency_s,
            "round_latency_s": self.round_latency_s,
            "global_batch": self.global_batch,
            "efficiency": self.efficiency,
            "relaxed_efficiency": self.relaxed_efficiency,
            "gap": self.gap,
            "critical_path": dict(self.critical_path),
            "energy": self.energy.to_dict(),
            "policy": self.policy,
        }


def evaluate(
    instance: Instance,
    batch_sizes: ArrayLike,
    uplink_slots_s: ArrayLike,
    downlink_slots_s: ArrayLike,
    *,
    policy: str,
    relaxed_efficiency: float = float("nan"),
) -> Allocation:
    """Compute the latencies, efficiency and energy of any allocation (Eq. 9-16, 27-29).

    Raises
    ------
    ValueError
        If a batch is out of bounds or the slots overfill a frame.
    """
    batches = np.asarray(batch_sizes, dtype=np.int64)
    up = np.asarray(uplink_slots_s, dtype=float)
    down = np.asarray(downlink_slots_s, dtype=float)
    k = instance.num_devices
    if batches.shape != (k,) or up.shape != (k,) or down.shape != (k,):
        raise ValueError(f"allocation: expected {k} batch sizes and slots per link")
    if np.any(batches < instance.min_batch) or np.any(batches > instance.max_batch):
        raise ValueError(f"batch_sizes: must lie in [{instance.min_batch}, {instance.max_batch}]")
    for name, slots, frame in (
        ("uplink_slots_s", up, instance.uplink_frame_s),
        ("downlink_slots_s", down, instance.downlink_frame_s),
    ):
        if np.any(slots <= 0) or slots.sum() > frame * (1 + 1e-9):
            raise ValueError(f"{name}: must be positive and fill at most one frame ({frame} s)")
    compute, update = compute_s(instance, batches), update_s(instance)
    allocation = from_phases(
        batches,
        (up, down),
        compute,
        uplink_airtime_s(instance) * instance.uplink_frame_s / up,  # Eq. (10)
        downlink_airtime_s(instance) * instance.downlink_frame_s / down,  # Eq. (11)
        update,
        policy=policy,
        energy=device_energy(instance, compute, update),
        relaxed_efficiency=relaxed_efficiency,
    )
    return with_listening(instance, allocation, compute + update)


def with_listening(instance: Instance, allocation: Allocation, working_s: ArrayLike) -> Allocation:
    """Return ``allocation`` with its devices' idle listening, outside ``working_s`` and airtime.

    None unless the instance's ``idle_power_w`` is set (:func:`scheduler.energy.listening`).
    """
    energy = listening(instance, allocation.energy, allocation.round_latency_s, working_s)
    return replace(allocation, energy=energy)


TIE_RTOL = 1e-9


def last_to_finish(finish_s: np.ndarray) -> int:
    """Index of the device that ends a phase: the first of those within ``TIE_RTOL`` of the last.

    The optimal slots make every device end the uplink phase together (Theorems 1-2), to the
    last bits of the floating point, which differ from one CPU's vector code to another's;
    breaking such ties by index makes the critical path the same on every machine.
    """
    return int(np.argmax(finish_s >= finish_s.max() * (1.0 - TIE_RTOL)))


def from_phases(
    batch_sizes: np.ndarray,
    slots_s: tuple[np.ndarray, np.ndarray],
    compute: np.ndarray,
    upload: np.ndarray,
    download: np.ndarray,
    update: np.ndarray,
    *,
    policy: str,
    energy: DeviceEnergy,
    relaxed_efficiency: float = float("nan"),
) -> Allocation:
    """Assemble an allocation from each device's phase times and energy (Eq. 13-16).

    The uplink phase ends at max_k(compute_k + upload_k), the downlink phase lasts
    max_k(download_k + update_k), and the round is their sum (Eq. 15); the efficiency is
    sqrt(B) / T with B the sum of ``batch_sizes``.
    """
    first, second = compute + upload, download + update
    i, j = last_to_finish(first), last_to_finish(second)
    latency = float(first.max() + second.max())  # Eq. (15) / (29)
    global_batch = int(np.sum(batch_sizes))
    return Allocation(
        batch_sizes=batch_sizes,
        uplink_slots_s=slots_s[0],
        downlink_slots_s=slots_s[1],
        uplink_latency_s=float(first.max()),
        downlink_latency_s=float(second.max()),
        round_latency_s=latency,
        global_batch=global_batch,
        efficiency=float(np.sqrt(global_batch) / latency),
        relaxed_efficiency=relaxed_efficiency,
        policy=policy,
        energy=energy,
        critical_path={
            "compute_s": float(compute[i]),
            "upload_s": float(upload[i]),
            "download_s": float(download[j]),
            "update_s": float(update[j]),
        },
    )


def restrict(instance: Instance, allocation: Allocation, indices: ArrayLike) -> Allocation:
    """Re-evaluate ``allocation`` for the devices at ``indices`` only, keeping their slots.

    A round in which some devices fail takes the latency of those that took part: their
    planned batches and slots (the others' slots stay unused).
    """
    picked = np.asarray(indices, dtype=np.int64)
    return evaluate(
        instance.subset(picked),
        allocation.batch_sizes[picked],
        allocation.uplink_slots_s[picked],
        allocation.downlink_slots_s[picked],
        policy=allocation.policy,
        relaxed_efficiency=allocation.relaxed_efficiency,
    )


def optimal_uplink_slots(instance: Instance, batch_sizes: ArrayLike) -> np.ndarray:
    """Uplink slots that minimise max_k(t_k^L + t_k^U) for fixed batches (Theorem 1, Eq. 22)."""
    _, fractions = min_max_finish(compute_s(instance, batch_sizes), uplink_airtime_s(instance))
    return fractions * instance.uplink_frame_s


def optimal_downlink_slots(instance: Instance) -> np.ndarray:
    """Downlink slots that minimise max_k(t_k^D + t_k^M) (Theorem 2, Eq. 26)."""
    _, fractions = min_max_finish(update_s(instance), downlink_airtime_s(instance))
    return fractions * instance.downlink_frame_s


def equal_slots(instance: Instance, frame_s: float) -> np.ndarray:
    """Equal slots T_f / K for every device."""
    return np.full(instance.num_devices, frame_s / instance.num_devices)
