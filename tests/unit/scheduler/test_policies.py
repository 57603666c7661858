"""Baseline policies, the registry and user policies by import path."""

from __future__ import annotations

import numpy as np
import pytest
from support.scheduler_cases import small_instance

from scheduler import Allocation, PolicyError, evaluate, get_policy, optimal_uplink_slots
from scheduler.allocation import last_to_finish
from scheduler.instances import random_instance


class HalfBatch:
    """A user policy: half the max batch, with the scheduler's optimal slots."""

    name = "half"

    def __init__(self, share: float = 0.5) -> None:
        self.share = share

    def allocate(self, instance, round_index=0) -> Allocation:
        batches = np.full(instance.num_devices, max(1, int(instance.max_batch * self.share)))
        down = np.full(instance.num_devices, instance.downlink_frame_s / instance.num_devices)
        up = optimal_uplink_slots(instance, batches)
        return evaluate(instance, batches, up, down, policy=self.name)


@pytest.fixture
def instance():
    return random_instance(9, "cpu", seed=3)


def test_fixed_rules(instance):
    assert set(get_policy("online").allocate(instance).batch_sizes) == {1}
    assert set(get_policy("full").allocate(instance).batch_sizes) == {128}
    assert set(get_policy("fixed", batch=17).allocate(instance).batch_sizes) == {17}


def test_random_is_seeded_per_round(instance):
    policy = get_policy("random", seed=7)
    first, again = policy.allocate(instance, 1), get_policy("random", seed=7).allocate(instance, 1)
    np.testing.assert_array_equal(first.batch_sizes, again.batch_sizes)
    assert not np.array_equal(first.batch_sizes, policy.allocate(instance, 2).batch_sizes)
    assert first.batch_sizes.min() >= 1 and first.batch_sizes.max() <= 128


@pytest.mark.parametrize("name", ["online", "full", "random", "fixed"])
def test_equal_slots_option(instance, name):
    allocation = get_policy(name, equal_slots=True).allocate(instance)
    np.testing.assert_allclose(allocation.uplink_slots_s, instance.uplink_frame_s / 9)
    np.testing.assert_allclose(allocation.downlink_slots_s, instance.downlink_frame_s / 9)
    optimal_slots = get_policy(name).allocate(instance)
    np.testing.assert_array_equal(allocation.batch_sizes, optimal_slots.batch_sizes)
    assert optimal_slots.round_latency_s <= allocation.round_latency_s


def test_equal_policy_splits_the_optimal_global_batch(instance):
    optimal = get_policy("optimal").allocate(instance)
    equal = get_policy("equal").allocate(instance)
    assert abs(equal.global_batch - optimal.global_batch) <= 1
    assert equal.batch_sizes.max() - equal.batch_sizes.min() <= 1
    assert set(get_policy("equal", global_batch=90).allocate(instance).batch_sizes) == {10}


@pytest.mark.parametrize("seed", range(8))
def test_optimal_beats_every_baseline(seed):
    instance = small_instance(seed, max_devices=5)
    best = get_policy("optimal").allocate(instance)
    for name in ["online", "full", "random", "equal"]:
        other = get_policy(name).allocate(instance)
        assert other.efficiency <= best.efficiency * (1 + 1e-9)
        assert other.relaxed_efficiency == pytest.approx(best.relaxed_efficiency)


def test_user_policy_by_import_path(instance):
    policy = get_policy("test_policies:HalfBatch", share=0.25)
    allocation = policy.allocate(instance)
    assert allocation.policy == "half"
    assert set(allocation.batch_sizes) == {32}


@pytest.mark.parametrize(
    ("name", "options", "message"),
    [
        ("nope", {}, "unknown policy 'nope'"),
        ("no.such.module:Thing", {}, "cannot import"),
        ("scheduler:Instance", {}, "does not take options"),
        ("fixed", {"colour": 1}, "does not take options"),
        ("scheduler.channel:ChannelParams", {}, "has no name and allocate"),
    ],
)
def test_bad_policy_names(name, options, message):
    with pytest.raises(PolicyError, match=message):
        get_policy(name, **options)


def test_fixed_batch_out_of_bounds(instance):
    with pytest.raises(ValueError, match=r"batch: must lie in \[1, 128\], got 300"):
        get_policy("fixed", batch=300).allocate(instance)


def test_reported_figures_follow_the_system_model(instance):
    """Every number of an allocation is what evaluate() computes for its batches and slots."""
    for name in ["optimal", "online", "random", "equal"]:
        got = get_policy(name).allocate(instance)
        again = evaluate(
            instance, got.batch_sizes, got.uplink_slots_s, got.downlink_slots_s, policy=name
        )
        assert got.round_latency_s == pytest.approx(again.round_latency_s, rel=1e-12)
        assert got.efficiency == pytest.approx(np.sqrt(got.global_batch) / got.round_latency_s)
        assert sum(got.critical_path.values()) == pytest.approx(got.round_latency_s)
        assert got.uplink_latency_s + got.downlink_latency_s == pytest.approx(got.round_latency_s)


def test_devices_that_end_a_phase_together_give_the_first_one_s_critical_path():
    """Finishing times within the last bits of each other are a tie, broken by index."""
    assert last_to_finish(np.array([1.0, 3.0, 3.0 * (1 + 1e-12), 2.0])) == 1
    assert last_to_finish(np.array([3.0 * (1 - 1e-12), 1.0, 3.0])) == 0
    assert last_to_finish(np.array([2.9, 1.0, 3.0])) == 2
    assert last_to_finish(np.zeros(3)) == 0
