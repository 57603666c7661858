"""Optimum of the relaxed problem P1 (CPU) / P7 (GPU) with real batch sizes.

The paper fixes the global batch B, solves P4 by a two-dimensional search over (E^U, mu)
(Theorem 1, Algorithm 1) and then searches over B. We parametrise the same optimum by the
uplink-phase latency t instead. For fixed t the largest global batch is

    B(t) = max sum_k B_k  s.t.  o_k + a_k B_k + d_k / x_k <= t,  sum_k x_k <= 1,
                                 lo_k <= B_k <= hi,

with d_k = s / R_k^U and x_k = tau_k^U / T_f^U. Its KKT conditions give Theorem 1's structure:
x_k = w sqrt(d_k / a_k) clipped to the slots that put B_k at its bounds, w = 1 / sqrt(mu), and
B_k = (t - o_k - d_k / x_k) / a_k, so every device ends its upload at t (Remark 3). The
constraint set is jointly convex in (B, x, t), so B(t) is concave and sqrt(B(t)) / (t + T^D)
is quasi-concave: its stationarity condition (t + T^D) B'(t) = 2 B(t), with
B'(t) = mu sum_k x_k^2 / d_k (envelope theorem), has a decreasing left side and one root.
Each evaluation is O(K) and both searches are one-dimensional root finds on brackets that
hold with the batch bounds (unlike Corollaries 1-2), so the cost is O(K log 1/eps).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy

from scheduler.instance import Instance
from scheduler.latency import (
    LinearCompute,
    downlink_airtime_s,
    linear_compute,
    min_max_finish,
    update_s,
    uplink_airtime_s,
)

_XTOL = 1e-14


@dataclass(frozen=True)
class RelaxedSolution:
    """Optimum of the relaxed problem.

    Attributes
    ----------
    batches
        Real batch sizes B_k^* (Eq. 22 / 41).
    uplink_fractions, downlink_fractions
        Slot fractions tau_k / T_f (Eq. 22 and 26).
    uplink_latency_s, downlink_latency_s
        Phase latencies t^* and T^D.
    efficiency
        sqrt(sum B_k^*) / (t^* + T^D).
    """

    batches: np.ndarray
    uplink_fractions: np.ndarray
    downlink_fractions: np.ndarray
    uplink_latency_s: float
    downlink_latency_s: float
    efficiency: float


@dataclass(frozen=True)
class _Level:
    """Inner solution at uplink latency t: batches, slot fractions and dB/dt."""

    batches: np.ndarray
    fractions: np.ndarray
    slope: float


class _UplinkProblem:
    """The inner problem B(t) for one instance (vectorised over devices)."""

    def __init__(self, lin: LinearCompute, airtime: np.ndarray) -> None:
        self.lin, self.d = lin, airtime
        a = lin.per_sample_s
        self.free = a <= 0  # batch costs no time: max batch, slot set by the deadline
        self.g = np.sqrt(airtime / np.where(self.free, 1.0, a))  # x_k = w g_k (Theorem 1)

    def slots_for(self, t: float, batches: np.ndarray | float) -> np.ndarray:
        """Slot fraction that lets each device finish at t with ``batches``."""
        spare = t - self.lin.offset_s - self.lin.per_sample_s * batches
        return np.where(spare > 0, self.d / np.where(spare > 0, spare, 1.0), np.inf)

    def level(self, t: float) -> _Level:
        """Solve the inner problem at uplink latency ``t`` (water-filling on w)."""
        lin = self.lin
        x_lo = self.slots_for(t, lin.lower)
        x_hi = self.slots_for(t, lin.upper)
        if np.sum(x_hi) <= 1.0:  # every device at max batch with slots to spare: mu = 0
            return _Level(np.full(len(self.d), lin.upper), x_hi, 0.0)
        if np.sum(x_lo) >= 1.0:  # t is the least feasible uplink latency: batches at min
            w = float(np.min(x_lo / self.g, where=~self.free, initial=np.inf))
            x = x_lo / np.sum(x_lo)
        else:
            w = self._water_level(x_lo, x_hi)
            x = np.where(self.free, x_lo, np.clip(w * self.g, x_lo, x_hi))
        spare = t - lin.offset_s - self.d / x
        a = np.where(self.free, 1.0, lin.per_sample_s)
        batches = np.where(self.free, lin.upper, np.clip(spare / a, lin.lower, lin.upper))
        slope = float(np.sum(x * x / self.d)) / (w * w) if np.isfinite(w) else np.inf
        return _Level(batches, x, slope)

    def _water_level(self, x_lo: np.ndarray, x_hi: np.ndarray) -> float:
        """Find w with sum_k clip(w g_k, x_lo, x_hi) = 1 (piecewise linear, increasing)."""
        sloped = ~self.free
        fixed = float(np.sum(x_lo[self.free]))
        g, lo, hi = self.g[sloped], x_lo[sloped], x_hi[sloped]
        w_lo = float(np.min(lo / g))
        w_hi = float(np.max(np.minimum(hi, 1.0) / g))

        def excess(w: float) -> float:
            return fixed + float(np.sum(np.clip(w * g, lo, hi))) - 1.0

        if excess(w_hi) <= 0:  # rounding at the saturation point t_sat
            return w_hi
        return scipy.optimize.brentq(
            excess, w_lo, w_hi, xtol=_XTOL * w_hi, rtol=4 * np.finfo(float).eps
        )


def solve_relaxed(instance: Instance) -> RelaxedSolution:
    """Maximise sqrt(B) / T over real batches and slots (P1, or P7 by Lemma 2)."""
    lin = linear_compute(instance)
    airtime = uplink_airtime_s(instance)
    downlink_s, down_x = min_max_finish(update_s(instance), downlink_airtime_s(instance))
    problem = _UplinkProblem(lin, airtime)
    # Bracket of t: all batches at their minimum, and the least t that fits all at maximum.
    t_min, _ = min_max_finish(lin.offset_s + lin.per_sample_s * lin.lower, airtime)
    t_sat, _ = min_max_finish(lin.offset_s + lin.per_sample_s * lin.upper, airtime)

    def stationarity(t: float) -> float:
        level = problem.level(t)
        return (t + downlink_s) * level.slope - 2.0 * float(np.sum(level.batches))

    if t_sat - t_min <= _XTOL * t_sat or stationarity(t_min) <= 0:
        t_opt = t_min if t_sat - t_min > _XTOL * t_sat else t_sat
    elif stationarity(t_sat * (1 - 1e-15)) >= 0:
        t_opt = t_sat
    else:
        t_opt = scipy.optimize.brentq(
            stationarity, t_min, t_sat, xtol=_XTOL * t_sat, rtol=4 * np.finfo(float).eps
        )
    level = problem.level(t_opt)
    total = float(np.sum(level.batches))
    return RelaxedSolution(
        batches=level.batches,
        uplink_fractions=level.fractions,
        downlink_fractions=down_x,
        uplink_latency_s=t_opt,
        downlink_latency_s=downlink_s,
        efficiency=float(np.sqrt(total) / (t_opt + downlink_s)),
    )
