"""Scheduling policies: the paper's optimum and the baselines of Sec. VI, behind one interface."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np

from scheduler.allocation import (
    Allocation,
    equal_slots,
    evaluate,
    optimal_downlink_slots,
    optimal_uplink_slots,
)
from scheduler.instance import Instance
from scheduler.integer import round_batches
from scheduler.relaxed import solve_relaxed


@runtime_checkable
class Policy(Protocol):
    """What the strategy, the CLI and the benchmarks call each round.

    A policy takes one round's :class:`~scheduler.instance.Instance` (device rates and
    compute profiles, frame lengths, batch bounds) and returns an
    :class:`~scheduler.allocation.Allocation`. Build the allocation with
    :func:`scheduler.allocation.evaluate` so that its latencies follow the system model;
    :func:`scheduler.allocation.optimal_uplink_slots` gives the best slots for your batches.
    ``round_index`` lets a randomised policy draw reproducibly per round.
    """

    name: str

    def allocate(self, instance: Instance, round_index: int = 0) -> Allocation:
        """Return batch sizes and slots for one round."""
        ...


def relaxed_bound(instance: Instance) -> float:
    """Relaxed optimum of the instance: an upper bound on any allocation's efficiency."""
    return solve_relaxed(instance).efficiency


class OptimalPolicy:
    """The paper's joint batch-size and time-slot allocation (Theorems 1-2, Lemma 2).

    Solves the relaxed problem exactly, then returns the best integer batches it finds next to
    it with slots re-optimised for them; ``relaxed_efficiency`` bounds the integer optimum.
    """

    name = "optimal"

    def allocate(self, instance: Instance, round_index: int = 0) -> Allocation:
        """Return the optimal allocation for ``instance``."""
        relaxed = solve_relaxed(instance)
        batches = round_batches(instance, relaxed)
        return evaluate(
            instance,
            batches,
            optimal_uplink_slots(instance, batches),
            relaxed.downlink_fractions * instance.downlink_frame_s,
            policy=self.name,
            relaxed_efficiency=relaxed.efficiency,
        )


class _BatchRulePolicy:
    """Batches from a rule; slots optimal for them (Theorems 1-2) or equal (T_f / K)."""

    name = "batch-rule"

    def __init__(self, *, equal_slots: bool = False) -> None:
        self.equal_slots = equal_slots

    def batches(self, instance: Instance, round_index: int) -> np.ndarray:
        """Return the batch sizes of this rule."""
        raise NotImplementedError

    def allocate(self, instance: Instance, round_index: int = 0) -> Allocation:
        """Return this rule's batches with optimal or equal slots."""
        batches = self.batches(instance, round_index)
        if self.equal_slots:
            up = equal_slots(instance, instance.uplink_frame_s)
            down = equal_slots(instance, instance.downlink_frame_s)
        else:
            up = optimal_uplink_slots(instance, batches)
            down = optimal_downlink_slots(instance)
        return evaluate(
            instance,
            batches,
            up,
            down,
            policy=self.name,
            relaxed_efficiency=relaxed_bound(instance),
        )


class FixedBatchPolicy(_BatchRulePolicy):
    """Every device uses the same batch size ``batch``."""

    name = "fixed"

    def __init__(self, batch: int = 32, *, equal_slots: bool = False) -> None:
        super().__init__(equal_slots=equal_slots)
        if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
            raise ValueError(f"batch: must be a whole number >= 1, got {batch!r}")
        self.batch = batch

    def batches(self, instance: Instance, round_index: int) -> np.ndarray:
        """Return ``batch`` for every device (must lie within the instance's bounds)."""
        if not instance.min_batch <= self.batch <= instance.max_batch:
            raise ValueError(
                f"batch: must lie in [{instance.min_batch}, {instance.max_batch}], got {self.batch}"
            )
        return np.full(instance.num_devices, self.batch, dtype=np.int64)


class OnlinePolicy(_BatchRulePolicy):
    """Online learning: B_k = 1, i.e. the smallest batch allowed (Sec. VI-D)."""

    name = "online"

    def batches(self, instance: Instance, round_index: int) -> np.ndarray:
        """Return min_batch for every device."""
        return np.full(instance.num_devices, instance.min_batch, dtype=np.int64)


class FullPolicy(_BatchRulePolicy):
    """Full batch: B_k = B^max (Sec. VI-D)."""

    name = "full"

    def batches(self, instance: Instance, round_index: int) -> np.ndarray:
        """Return max_batch for every device."""
        return np.full(instance.num_devices, instance.max_batch, dtype=np.int64)


class RandomPolicy(_BatchRulePolicy):
    """Random batch: uniform in [min_batch, max_batch] per device and round (Sec. VI-D)."""

    name = "random"

    def __init__(self, seed: int = 0, *, equal_slots: bool = False) -> None:
        super().__init__(equal_slots=equal_slots)
        self.seed = seed

    def batches(self, instance: Instance, round_index: int) -> np.ndarray:
        """Draw batches from a generator seeded by (seed, round_index)."""
        rng = np.random.default_rng([self.seed, round_index])
        return rng.integers(
            instance.min_batch, instance.max_batch, instance.num_devices, endpoint=True
        )


class EqualPolicy:
    """Equal batches B / K and equal slots T_f / K (Case A of Corollary 1).

    ``global_batch`` defaults to the relaxed optimum's global batch, so that the comparison
    isolates the value of allocating batches and slots per device.
    """

    name = "equal"

    def __init__(self, global_batch: int | None = None) -> None:
        self.global_batch = global_batch

    def allocate(self, instance: Instance, round_index: int = 0) -> Allocation:
        """Return equal batches and slots."""
        relaxed = solve_relaxed(instance)
        k = instance.num_devices
        total = self.global_batch or round(float(relaxed.batches.sum()))
        total = int(np.clip(total, k * instance.min_batch, k * instance.max_batch))
        batches = np.full(k, total // k, dtype=np.int64)
        batches[: total % k] += 1
        return evaluate(
            instance,
            batches,
            equal_slots(instance, instance.uplink_frame_s),
            equal_slots(instance, instance.downlink_frame_s),
            policy=self.name,
            relaxed_efficiency=relaxed.efficiency,
        )
