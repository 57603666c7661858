"""Independent references for the scheduler tests: a generic NLP solver and enumeration."""

from __future__ import annotations

import itertools

import numpy as np
from scipy.optimize import minimize

from scheduler import Instance
from scheduler.latency import (
    compute_s,
    downlink_airtime_s,
    linear_compute,
    min_max_finish,
    update_s,
    uplink_airtime_s,
)


def _feasible_efficiency(instance: Instance, batches, up, down) -> float:
    """Efficiency of real batches with slot fractions renormalised to fill each frame."""
    up = np.maximum(up, 1e-300) / np.maximum(up, 1e-300).sum()
    down = np.maximum(down, 1e-300) / np.maximum(down, 1e-300).sum()
    t_up = np.max(compute_s(instance, batches) + uplink_airtime_s(instance) / up)
    t_down = np.max(update_s(instance) + downlink_airtime_s(instance) / down)
    return float(np.sqrt(np.sum(batches)) / (t_up + t_down))


def generic_relaxed_efficiency(instance: Instance, starts: int = 8, seed: int = 0) -> float:
    """Relaxed optimum by SLSQP on the epigraph form of P1/P6, best of several random starts.

    Variables: scaled batches, uplink and downlink slot fractions, and the two phase
    latencies; constraints (17b), (17c), (21b), (25b). Batches range over [min, max] with the
    exact piecewise GPU latency (Eq. 27), so Lemma 2 is not assumed.
    """
    k = instance.num_devices
    lo, hi = float(instance.min_batch), float(instance.max_batch)
    lin = linear_compute(instance)
    d, e, u = uplink_airtime_s(instance), downlink_airtime_s(instance), update_s(instance)
    scale = float(np.max(d) + np.max(compute_s(instance, np.full(k, hi))) + np.max(u + e))
    rng = np.random.default_rng(seed)

    def unpack(z):
        return (
            lo + (hi - lo) * z[:k],
            z[k : 2 * k],
            z[2 * k : 3 * k],
            z[3 * k] * scale,
            z[-1] * scale,
        )

    def objective(z):
        batches, _, _, t_up, t_down = unpack(z)
        return -(0.5 * np.log(batches.sum()) - np.log(t_up + t_down))

    def uplink_gap(z):
        batches, x, _, t_up, _ = unpack(z)
        return (t_up - compute_s(instance, batches) - d / x) / scale

    def downlink_gap(z):
        _, _, y, _, t_down = unpack(z)
        return (t_down - u - e / y) / scale

    constraints = [
        {"type": "ineq", "fun": uplink_gap},
        {"type": "ineq", "fun": downlink_gap},
        {"type": "ineq", "fun": lambda z: 1 - z[k : 2 * k].sum()},
        {"type": "ineq", "fun": lambda z: 1 - z[2 * k : 3 * k].sum()},
    ]
    bounds = [(0, 1)] * k + [(1e-6, 1)] * (2 * k) + [(1e-6, None)] * 2
    best = -np.inf
    for start in range(starts):
        # One start at the compute-bound corner of each device (Lemma 2's region), others random.
        b0 = rng.uniform(0, 1, k) if start else np.clip((lin.lower - lo) / max(hi - lo, 1), 0, 1)
        x0, y0 = rng.dirichlet(np.ones(k)), rng.dirichlet(np.ones(k))
        batches0 = lo + (hi - lo) * b0
        t0 = np.max(compute_s(instance, batches0) + d / x0) * 1.01 / scale
        d0 = np.max(u + e / y0) * 1.01 / scale
        result = minimize(
            objective,
            np.r_[b0, x0, y0, t0, d0],
            method="SLSQP",
            bounds=bounds,
            constraints=constraints,
            options={"ftol": 1e-15, "maxiter": 400},
        )
        batches, x, y, _, _ = unpack(np.clip(result.x, 0, None))
        best = max(best, _feasible_efficiency(instance, np.clip(batches, lo, hi), x, y))
    return best


def integer_efficiency(instance: Instance, batches) -> float:
    """Efficiency of integer batches with optimal slots on both links."""
    t_up, _ = min_max_finish(compute_s(instance, batches), uplink_airtime_s(instance))
    t_down, _ = min_max_finish(update_s(instance), downlink_airtime_s(instance))
    return float(np.sqrt(np.sum(batches)) / (t_up + t_down))


def exhaustive_integer_efficiency(instance: Instance) -> float:
    """Best efficiency over every integer batch vector (K <= 3, small max_batch)."""
    sizes = range(instance.min_batch, instance.max_batch + 1)
    return max(
        integer_efficiency(instance, np.array(b))
        for b in itertools.product(sizes, repeat=instance.num_devices)
    )
