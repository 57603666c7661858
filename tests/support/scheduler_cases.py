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
