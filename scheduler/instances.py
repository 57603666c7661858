"""Seeded random instances in the paper's setting (Table I), for tests and benchmarks."""

from __future__ import annotations

import numpy as np

from scheduler.channel import ChannelParams, average_rate_bps, path_gain
from scheduler.instance import Instance

# Paper's CPU frequencies (Sec. VI-B): equal thirds of 0.7, 1.4 and 2.1 GHz.
# The device clocks of Sec. VI-B, each held by a third of the devices.
CPU_HZ_TIERS = (0.7e9, 1.4e9, 2.1e9)


def random_instance(
    num_devices: int,
    scenario: str = "cpu",
    *,
    seed: int = 0,
    parameters: int = 100_000,
    bits_per_element: int = 32,
    max_batch: int = 128,
    params: ChannelParams | None = None,
) -> Instance:
    """Devices uniform in the cell with average Rayleigh rates (Eq. 5-6).

    The compute profiles put compute and communication on a comparable scale, so that the
    optimum is interior: a device's full-batch compute time is of the order of its upload
    time when it holds the whole frame times K.
    """
    params = params or ChannelParams()
    rng = np.random.default_rng(seed)
    k = num_devices
    distance = params.cell_radius_m * np.sqrt(rng.uniform(0.01, 1.0, k))
    rate = average_rate_bps(path_gain(distance), params)
    bits = float(parameters * bits_per_element)
    per_sample = k * bits / np.median(rate) / max_batch  # seconds per sample, comparable scale
    speed = np.asarray(CPU_HZ_TIERS)[np.arange(k) % 3] / CPU_HZ_TIERS[1]
    devices = {"uplink_rate_bps": rate, "downlink_rate_bps": rate}
    if scenario == "cpu":
        cpu_hz = speed * CPU_HZ_TIERS[1]
        devices |= {
            "cpu_hz": cpu_hz,
            "cycles_per_sample": per_sample * CPU_HZ_TIERS[1] * rng.uniform(0.5, 2.0, k),
            "update_cycles": np.full(k, 2.0 * parameters),
        }
    else:
        devices |= {
            "latency_floor_s": per_sample * 8 / speed,
            "latency_slope_s": per_sample / speed * rng.uniform(0.5, 2.0, k),
            "batch_threshold": np.floor(rng.uniform(4, 32, k)),
            "update_s": np.full(k, 1e-4),
        }
    return Instance(scenario=scenario, gradient_bits=bits, devices=devices, max_batch=max_batch)
