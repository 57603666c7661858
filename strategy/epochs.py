"""Latency of model-based rounds: local epochs, then a model upload and download (Sec. VI-C).

The model-based schemes use the paper's latency model (Sec. III-B, V-B) with the compute of a
whole local epoch in place of one batch: an epoch of N_k examples in mini-batches of b
costs the compute of each mini-batch (Eq. 9 or 27) plus one model update per step (Eq. 12 or
28); on a CPU that is N_k C / f_k + ceil(N_k / b) M / f_k. A model has as many elements as a
gradient; its upload and download, of the encoded size at model-bits (the instance's s),
take the airtime of Eq. (10)-(11).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from scheduler import Allocation, Instance
from scheduler.allocation import equal_slots, from_phases, with_listening
from scheduler.energy import DeviceEnergy, device_energy
from scheduler.latency import (
    compute_s,
    downlink_airtime_s,
    min_max_finish,
    update_s,
    uplink_airtime_s,
)


def epoch_compute_s(instance: Instance, sizes: ArrayLike, local_batch: int) -> np.ndarray:
    """Compute latency of one local epoch of mini-batch SGD on each device.

    Parameters
    ----------
    instance
        The round's instance (its devices' compute profiles).
    sizes
        Local dataset sizes N_k.
    local_batch
        Mini-batch size b of the local steps; the last step takes the remainder.
    """
    sizes = np.asarray(sizes, dtype=np.int64)
    steps, remainder = np.divmod(sizes, local_batch)
    full = compute_s(instance, np.full(instance.num_devices, local_batch))
    last = np.where(remainder > 0, compute_s(instance, np.maximum(remainder, 1)), 0.0)
    updates = steps + (remainder > 0)
    return steps * full + last + updates * update_s(instance)


def exchange_slots(
    instance: Instance, ready_s: ArrayLike, *, equal: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Uplink and downlink slots of a model exchange.

    Equal slots T_f / K, or the min-max slots: uplink for devices ready at ``ready_s``
    (Theorem 1 for fixed batches), downlink for a download with nothing after it (Theorem 2
    with no update).
    """
    if equal:
        return (
            equal_slots(instance, instance.uplink_frame_s),
            equal_slots(instance, instance.downlink_frame_s),
        )
    ready = np.asarray(ready_s, dtype=float)
    _, up = min_max_finish(ready, uplink_airtime_s(instance))
    _, down = min_max_finish(np.zeros_like(ready), downlink_airtime_s(instance))
    return up * instance.uplink_frame_s, down * instance.downlink_frame_s


def exchange_allocation(
    instance: Instance,
    ready_s: ArrayLike,
    examples: ArrayLike,
    slots: tuple[ArrayLike, ArrayLike],
    *,
    policy: str,
    energy: DeviceEnergy | None = None,
) -> Allocation:
    """Evaluate a model-based round: compute until ``ready_s``, upload, download (Eq. 15).

    The uplink phase ends at max_k(ready_k + t_k^U) and the downlink phase, in which each
    device only replaces its model, lasts max_k t_k^D. ``batch_sizes`` and ``global_batch``
    hold the examples each device trained on; the efficiency is sqrt(B) / T as for the
    gradient schemes. The energy is that of computing for ``ready_s`` and uploading, unless
    given, and of listening idle for the rest of the round.
    """
    ready = np.asarray(ready_s, dtype=float)
    up, down = (np.asarray(s, dtype=float) for s in slots)
    allocation = from_phases(
        np.asarray(examples, dtype=np.int64),
        (up, down),
        ready,
        uplink_airtime_s(instance) * instance.uplink_frame_s / up,  # Eq. (10)
        downlink_airtime_s(instance) * instance.downlink_frame_s / down,  # Eq. (11)
        np.zeros_like(ready),
        policy=policy,
        energy=device_energy(instance, ready) if energy is None else energy,
    )
    return with_listening(instance, allocation, ready)
