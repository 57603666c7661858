"""Device energy of one round: computation, upload and idle listening (after ref. [27]).

Computation. A CPU at clock f_k with effective switched capacitance kappa spends
kappa C B_k f_k^2 joules on B_k samples of C cycles each, and kappa M f_k^2 on the model
update of M cycles: power kappa f_k^3 over the compute latency (Eq. 9) and the update
latency (Eq. 12). A GPU draws its board power over the same latencies (Eqs. 27-28).

Transmission. A device transmits at P_k^U only while it sends: its airtime s / R_k^U, not
the upload latency of Eq. (10), which includes the frame's other devices' slots.

Idle listening. Only if configured (the instance's ``idle_power_w``, 0 by default): a device
draws it for the rest of the round, T less its computation and airtime, the download
included. The base station's energy is not counted.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from scheduler.instance import Instance
from scheduler.latency import compute_s, update_s, uplink_airtime_s


def compute_power_w(instance: Instance) -> np.ndarray:
    """Power of each device while it computes: kappa f_k^3 for a CPU, the board power of a GPU."""
    if instance.scenario == "cpu":
        return instance.effective_capacitance * instance.devices["cpu_hz"] ** 3
    return np.full(instance.num_devices, instance.gpu_power_w)


@dataclass(frozen=True, eq=False)
class DeviceEnergy:
    """Energy of each device in one round, in joules (device order).

    Attributes
    ----------
    compute_j
        Local gradient computation (kappa C B_k f_k^2 on a CPU) and, where the round has one,
        the local model update (kappa M f_k^2).
    upload_j
        Gradient (or model) upload: P_k^U s / R_k^U.
    idle_j
        Idle listening for the rest of the round.
    """

    compute_j: np.ndarray
    upload_j: np.ndarray
    idle_j: np.ndarray

    @property
    def device_j(self) -> np.ndarray:
        """Total energy of each device."""
        return self.compute_j + self.upload_j + self.idle_j

    @property
    def total_j(self) -> float:
        """Energy of all devices together."""
        return float(np.sum(self.device_j))

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON energy contract."""
        return {
            "compute_j": [float(e) for e in self.compute_j],
            "upload_j": [float(e) for e in self.upload_j],
            "idle_j": [float(e) for e in self.idle_j],
            "total_j": self.total_j,
        }


def device_energy(
    instance: Instance, compute_s: np.ndarray, update_s: np.ndarray | float = 0.0
) -> DeviceEnergy:
    """Return each device's energy for ``compute_s`` and ``update_s`` seconds of computation.

    The upload takes the airtime s / R_k^U at the instance's ``uplink_power_w``; no idle
    listening (:func:`listening`).
    """
    power = compute_power_w(instance)
    return DeviceEnergy(
        compute_j=power * (np.asarray(compute_s, dtype=float) + update_s),
        upload_j=instance.uplink_power_w * uplink_airtime_s(instance),
        idle_j=np.zeros(instance.num_devices),
    )


def listening(
    instance: Instance, energy: DeviceEnergy, round_latency_s: float, working_s: ArrayLike
) -> DeviceEnergy:
    """Return ``energy`` with each device's idle listening over a round of ``round_latency_s``.

    A device listens at ``idle_power_w`` for the round less ``working_s`` (its computation)
    and its airtime.
    """
    busy = np.asarray(working_s, dtype=float) + uplink_airtime_s(instance)
    idle = instance.idle_power_w * np.maximum(round_latency_s - busy, 0.0)
    return replace(energy, idle_j=idle)


def round_energy(instance: Instance, batch_sizes: ArrayLike) -> DeviceEnergy:
    """Return each device's energy in a gradient round of ``batch_sizes``, but idle listening.

    Its gradient (Eq. 9 or 27), its model update (Eq. 12 or 28) and its upload: whatever the
    slots.
    """
    return device_energy(instance, compute_s(instance, batch_sizes), update_s(instance))
