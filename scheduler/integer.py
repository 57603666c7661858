"""Integer batch sizes close to the relaxed optimum, with slots re-optimised exactly."""

from __future__ import annotations

import itertools

import numpy as np
import scipy

from scheduler.instance import Instance
from scheduler.latency import compute_s, linear_compute, min_max_finish, uplink_airtime_s
from scheduler.relaxed import RelaxedSolution

# Up to this many devices the polish also tries every single-device and pairwise move.
_EXHAUSTIVE_MOVES_UP_TO = 12


class _IntegerProblem:
    """Integer batches of one instance, scored by sqrt(B) / (T^U(B) + T^D).

    Device k's batch ranges over [floor(lo_k), max_batch], lo_k the lower end of its linear
    compute model. A GPU device with a fractional threshold B_th may thus sit at floor(B_th),
    the top of its flat region, as well as in the compute-bound region B >= ceil(B_th)
    (Lemma 2 holds for real batches only). Its latency there is t_l, above the linear model's
    value, so every slot is computed from the exact latency of Eq. (27): max(t_l, o + a B),
    still convex in B.
    """

    def __init__(self, instance: Instance, downlink_s: float) -> None:
        lin = linear_compute(instance)
        self.instance, self.downlink_s = instance, downlink_s
        self.offset, self.per_sample = lin.offset_s, lin.per_sample_s
        self.airtime = uplink_airtime_s(instance)
        self.upper = instance.max_batch
        self.lower = np.minimum(np.floor(lin.lower + 1e-9), self.upper).astype(np.int64)
        self.flat_top = self.lower < lin.lower - 1e-9  # lower = floor(B_th) < B_th
        self.least_s = compute_s(instance, self.lower)  # t_l for a GPU device (Eq. 27)

    def uplink_s(self, batches: np.ndarray) -> float:
        """Uplink-phase latency with slots optimal for ``batches`` (Theorem 1 for fixed B_k)."""
        return min_max_finish(compute_s(self.instance, batches), self.airtime)[0]

    def efficiency(self, batches: np.ndarray) -> float:
        """Learning efficiency of integer ``batches`` with optimal slots."""
        return float(np.sqrt(batches.sum()) / (self.uplink_s(batches) + self.downlink_s))

    def slots(self, t: float, batches: np.ndarray) -> np.ndarray:
        """Slot fractions that let each device end its upload at t (inf if it cannot)."""
        spare = t - np.maximum(self.least_s, self.offset + self.per_sample * batches)
        return np.where(spare > 0, self.airtime / np.where(spare > 0, spare, 1.0), np.inf)

    def most_batches_at(self, t: float) -> np.ndarray:
        """Return the largest integer global batch whose uploads all end by t.

        The slot fraction x_k(B) = d_k / (t - max(t_l, o_k + a_k B)) is convex in B, so the
        unit increments taken in order of slot cost form the optimum: take every increment
        that costs at most a threshold theta (closed form per device), with the largest theta
        that fits in the frame, then the cheapest remaining increments that still fit.
        """
        a, d, base = self.per_sample, self.airtime, t - self.offset
        leave_flat = self._leave_flat_cost(t)

        def batches_at(theta: float) -> np.ndarray:
            # Increment B-1 -> B costs d a / (u (u + a)), u = t - o - a B: <= theta iff u >= root.
            root = 0.5 * (np.sqrt(a * a + 4.0 * d * a / theta) - a)
            most = np.floor((base - root) / np.where(a > 0, a, 1.0))
            most = np.clip(np.where(a > 0, most, self.upper), self.lower, self.upper)
            # floor(B_th) -> ceil(B_th) costs less than the linear increment to ceil(B_th).
            most += (most == self.lower) & (leave_flat <= theta)
            return most.astype(np.int64)

        def overfill(log_theta: float) -> float:
            return float(np.sum(self.slots(t, batches_at(np.exp(log_theta))))) - 1.0

        lo, hi = -200.0, 200.0
        batches = batches_at(np.exp(lo))
        if overfill(hi) <= 0:
            return batches_at(np.exp(hi))
        if overfill(lo) <= 0:
            # A step function: the root lands on a step edge.
            lo = scipy.optimize.brentq(overfill, lo, hi, xtol=1e-13)
            batches = batches_at(np.exp(lo))
            if overfill(lo) > 0:
                batches = batches_at(np.exp(lo - 1e-12))
        return self._fill(t, batches)

    def _leave_flat_cost(self, t: float) -> np.ndarray:
        """Slot cost at t of floor(B_th) -> ceil(B_th) (Eq. 27); inf for the other devices."""
        step = self.slots(t, self.lower + 1) - self.slots(t, self.lower)
        return np.where(self.flat_top, step, np.inf)

    def _fill(self, t: float, batches: np.ndarray) -> np.ndarray:
        """Add the cheapest single increments that still fit in the frame."""
        while True:
            room = 1.0 - float(np.sum(self.slots(t, batches)))
            growable = batches < self.upper
            cost = np.where(growable, self.slots(t, batches + 1) - self.slots(t, batches), np.inf)
            order = np.argsort(cost)
            taken = order[np.cumsum(cost[order]) <= room]
            if taken.size == 0:
                return batches
            batches = batches.copy()
            batches[taken] += 1

    def polish(self, batches: np.ndarray) -> np.ndarray:
        """Local search on the exact integer objective until no move improves it."""
        best = self.efficiency(batches)
        while True:
            candidate, score = self._bulk_move(batches)
            if score <= best * (1 + 1e-12):
                candidate, score = max(
                    ((c, self.efficiency(c)) for c in self._neighbours(batches)),
                    key=lambda pair: pair[1],
                    default=(batches, best),
                )
            if score <= best * (1 + 1e-12):
                return batches
            batches, best = candidate, score

    def _bulk_move(self, batches: np.ndarray) -> tuple[np.ndarray, float]:
        """Best of adding the m cheapest unit increments, or removing the m most saving units.

        Costs are slot fractions at the current uplink latency; m doubles from 1 while the
        objective improves, and m = 2 is tried even if m = 1 does not improve: two increments
        can pay off where each alone does not, e.g. when one takes a device out of its flat
        region (Eq. 27) and so raises the uplink latency enough for another.
        """
        t = self.uplink_s(batches)
        now = self.slots(t, batches)
        up = np.where(batches < self.upper, self.slots(t, batches + 1) - now, np.inf)
        down = np.where(batches > self.lower, now - self.slots(t, batches - 1), -np.inf)
        best, best_score = batches, self.efficiency(batches)
        for order, count, step in (
            (np.argsort(up), int(np.isfinite(up).sum()), 1),
            (np.argsort(-down), int(np.isfinite(down).sum()), -1),
        ):
            m = 1
            while m <= count:
                candidate = batches.copy()
                candidate[order[:m]] += step
                score = self.efficiency(candidate)
                if score > best_score:
                    best, best_score = candidate, score
                elif m > 1:
                    break
                m *= 2
        return best, best_score

    def _neighbours(self, batches: np.ndarray):
        """Every single-device and pairwise unit move, for small fleets only."""
        k = len(batches)
        if k > _EXHAUSTIVE_MOVES_UP_TO:
            return
        for i, step in itertools.product(range(k), (1, -1)):
            candidate = batches.copy()
            candidate[i] += step
            if self.lower[i] <= candidate[i] <= self.upper:
                yield candidate
        for i, j in itertools.permutations(range(k), 2):
            if batches[i] > self.lower[i] and batches[j] < self.upper:
                candidate = batches.copy()
                candidate[i] -= 1
                candidate[j] += 1
                yield candidate


def round_batches(instance: Instance, relaxed: RelaxedSolution) -> np.ndarray:
    """Integer batch sizes within the batch bounds, at or next to the best integer allocation.

    Start from the largest integer global batch that fits the relaxed optimum's uplink
    latency t^*, then improve the exact integer objective by local moves.
    """
    problem = _IntegerProblem(instance, relaxed.downlink_latency_s)
    t_floor = problem.uplink_s(problem.lower)
    start = problem.most_batches_at(max(relaxed.uplink_latency_s, t_floor))
    return problem.polish(start)
