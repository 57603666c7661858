"""Gradient-based FEEL (Sec. VI-C): one SGD step per round on every device's whole local data."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from scheduler import Allocation, Instance, evaluate
from scheduler.allocation import equal_slots
from strategy.instance import InstanceSettings
from strategy.loop import FeelStrategy
from task.protocol import ProfileReport


class LocalDataPolicy:
    """B_k = N_k, the device's entire local dataset, with equal TDMA slots T_f / K.

    The paper's gradient-based FEEL "trains each local model using the entire dataset
    without considering the communication-and-computation trade-off" (Sec. VI-C): the batch
    is not a decision, so neither B^max of constraint (17e) nor the slots are optimised.

    Parameters
    ----------
    sizes
        N_k of each device of the instance, in its order.
    """

    name = "gradient-feel"

    def __init__(self, sizes: Sequence[int]) -> None:
        self.sizes = np.asarray(sizes, dtype=np.int64)

    def allocate(self, instance: Instance, round_index: int = 0) -> Allocation:
        """Return the batches N_k with equal slots; the latency of Eq. (15) for them."""
        return evaluate(
            instance,
            self.sizes,
            equal_slots(instance, instance.uplink_frame_s),
            equal_slots(instance, instance.downlink_frame_s),
            policy=self.name,
            relaxed_efficiency=float("nan"),  # the relaxed bound is for B_k <= B^max
        )


class GradientFeelStrategy(FeelStrategy):
    """Gradient-based FEEL: the FEEL loop with B_k = N_k on every device, equal slots.

    The instance's batch bound is the largest local dataset instead of B^max (the bound of
    the batch-size policies), so the round latency is charged for B_k = N_k; the devices
    compute that gradient in chunks that fit in memory (:func:`task.training.compute_gradient`).

    Parameters
    ----------
    **kwargs
        As for :class:`~strategy.loop.FeelStrategy`, less ``policy``.
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(policy=LocalDataPolicy(()), **kwargs)

    def _round_settings(self, reports: Iterable[ProfileReport]) -> InstanceSettings:
        """Return the settings with the batch bound at the largest local dataset."""
        largest = max(p.num_examples for p in reports)
        return replace(self.settings, max_batch=largest)

    def _allocate(
        self, instance: Instance, reports: list[ProfileReport], server_round: int
    ) -> Allocation:
        """Return every device's whole local dataset as its batch, with equal slots."""
        self.policy = LocalDataPolicy([p.num_examples for p in reports])
        return self.policy.allocate(instance, round_index=server_round - 1)
