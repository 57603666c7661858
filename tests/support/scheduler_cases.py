"""Seeded random small instances covering both scenarios and binding batch bounds."""

from __future__ import annotations

import numpy as np

from scheduler import Instance


def small_instance(seed: int, max_devices: int = 5, max_batch: int | None = None) -> Instance:
    """A random instance with 1..max_devices devices; compute and airtime span decades."""
    rng = np.random.default_rng(seed)
    k = int(rng.integers(1, max_devices + 1))
    scenario = "cpu" if seed % 2 == 0 else "gpu"
    rates = {
        "uplink_rate_bps": rng.uniform(1e6, 1e8, k),
        "downlink_rate_bps": rng.uniform(1e6, 1e8, k),
    }
    if scenario == "cpu":
        profile = {
            "cpu_hz": rng.uniform(0.5e9, 3e9, k),
            "cycles_per_sample": 10 ** rng.uniform(5, 7.5, k),
            "update_cycles": rng.uniform(0, 1e7, k),
        }
    else:
        profile = {
            "latency_floor_s": rng.uniform(0.001, 0.05, k),
            "latency_slope_s": 10 ** rng.uniform(-5, -2.5, k),
            "batch_threshold": rng.integers(1, 100, k).astype(float),
            "update_s": rng.uniform(0, 0.01, k),
        }
    return Instance(
        scenario=scenario,
        gradient_bits=float(10 ** rng.uniform(5, 7)),
        devices=rates | profile,
        max_batch=max_batch or int(rng.integers(1, 200)),
    )


def fractional_gpu_instance(seed: int, max_devices: int = 3, max_batch: int = 12) -> Instance:
    """A random GPU instance whose thresholds B_th are fractional and below max_batch.

    Compute slopes reach the scale of the upload times, so that the half step from
    floor(B_th) to ceil(B_th) (Eq. 27) can decide the integer optimum.
    """
    rng = np.random.default_rng([seed, 27])
    k = int(rng.integers(1, max_devices + 1))
    rate = 10 ** rng.uniform(7, 8.5, k)
    return Instance(
        scenario="gpu",
        gradient_bits=float(10 ** rng.uniform(5.5, 6.5)),
        devices={
            "uplink_rate_bps": rate,
            "downlink_rate_bps": rate.copy(),
            "latency_floor_s": rng.uniform(0.001, 0.1, k),
            "latency_slope_s": 10 ** rng.uniform(-4, -1.5, k),
            "batch_threshold": rng.uniform(1, max_batch, k),
            "update_s": rng.uniform(0, 0.01, k),
        },
        max_batch=max_batch,
    )
