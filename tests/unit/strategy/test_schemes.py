"""Scheme names -> strategies and policies, with their options from the run config."""

import numpy as np
import pytest

from scheduler import Instance, PolicyError, evaluate, optimal_downlink_slots, optimal_uplink_slots
from scheduler.latency import compute_s
from server.build import build_strategy
from strategy import (
    SCHEME_NAMES,
    FeelStrategy,
    IndividualStrategy,
    ModelFeelStrategy,
    check_scheme,
)
from strategy.gradient_feel import GradientFeelStrategy
from strategy.schemes import scheme_policy
from task.config import resolve_run_config


class SpeedProportionalPolicy:
    """The README's worked example: B_k proportional to the device's training speed (the
    fastest at B^max), with the slots that are optimal for those batches (Theorems 1-2)."""

    name = "speed-proportional"

    def allocate(self, instance, round_index=0):
        speed = 1.0 / compute_s(instance, np.ones(instance.num_devices))  # samples per second
        batches = np.round(instance.max_batch * speed / speed.max())
        batches = np.clip(batches, instance.min_batch, instance.max_batch).astype(int)
        up = optimal_uplink_slots(instance, batches)
        return evaluate(instance, batches, up, optimal_downlink_slots(instance), policy=self.name)


def instance(max_batch=50, k=3):
    devices = [
        {"uplink_rate_bps": 1e7 * (i + 1), "downlink_rate_bps": 1e7, "cpu_hz": 1e9 * (i + 1),
         "cycles_per_sample": 1e6, "update_cycles": 1e4}
        for i in range(k)
    ]  # fmt: skip
    return Instance.from_dict(
        {"scenario": "cpu", "gradient_bits": 1e6, "max_batch": max_batch, "devices": devices}
    )


def config(**overrides):
    return resolve_run_config(overrides)


def test_every_named_scheme_builds_its_strategy():
    kinds = {}
    for scheme in SCHEME_NAMES:
        strategy = build_strategy(config(scheme=scheme), [(1000,)])
        kinds[scheme] = type(strategy)
        assert strategy.settings.gradient_size_bits == 32 * 1000
    assert kinds["model-feel"] is ModelFeelStrategy
    assert kinds["individual"] is IndividualStrategy
    assert kinds["gradient-feel"] is GradientFeelStrategy
    gradient = [s for s in SCHEME_NAMES if s not in ("model-feel", "individual", "gradient-feel")]
    assert all(kinds[s] is FeelStrategy for s in gradient)
    assert build_strategy(config(scheme="proposed"), [(10,)]).policy.name == "optimal"


@pytest.mark.parametrize("scheme", ["proposed", "model-feel", "individual"])
def test_each_scheme_sizes_its_exchanges_with_its_own_bits(scheme):
    bits = {"gradient-bits": 1, "model-bits": 8}
    strategy = build_strategy(config(scheme=scheme, **bits), [(1000,)])
    if scheme == "proposed":
        assert strategy.gradient_bits == 1
        assert strategy.settings.gradient_size_bits == 1000 + 32  # levels, one scale
    else:
        assert strategy.model_bits == 8
        assert strategy.settings.gradient_size_bits == 8 * 1000 + 64  # levels, low and step


def test_baselines_take_optimal_slots_unless_equal_slots_is_set():
    for scheme in ("online", "full", "random"):
        assert scheme_policy(config(scheme=scheme)).equal_slots is False
        policy = scheme_policy(config(scheme=scheme, **{"equal-slots": True}))
        assert policy.equal_slots is True
        slots = policy.allocate(instance()).uplink_slots_s
        np.testing.assert_allclose(slots, 0.01 / 3)


def test_random_scheme_draws_from_the_run_seed():
    first = scheme_policy(config(scheme="random", seed=1)).allocate(instance(), 0).batch_sizes
    again = scheme_policy(config(scheme="random", seed=1)).allocate(instance(), 0).batch_sizes
    other = scheme_policy(config(scheme="random", seed=2)).allocate(instance(), 0).batch_sizes
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)


def test_gradient_feel_bmax_uses_b_max_or_the_fixed_batch_with_equal_slots():
    bmax = config(scheme="gradient-feel-bmax")
    allocation = scheme_policy(bmax).allocate(instance(max_batch=50))
    assert allocation.batch_sizes.tolist() == [50, 50, 50]
    assert allocation.policy == "gradient-feel-bmax"
    np.testing.assert_allclose(allocation.uplink_slots_s, 0.01 / 3)
    fixed = scheme_policy(config(scheme="gradient-feel-bmax", **{"fixed-batch": 20}))
    assert fixed.allocate(instance()).batch_sizes.tolist() == [20, 20, 20]
    capped = scheme_policy(config(scheme="gradient-feel-bmax", **{"fixed-batch": 90}))
    assert capped.allocate(instance(max_batch=50)).batch_sizes.tolist() == [50, 50, 50]


def test_model_schemes_take_their_options_from_the_config():
    options = {"local-batch": 5, "equal-slots": True, "patience": 7, "min-delta": 0.2,
               "num-server-rounds": 9, "time-budget-s": 12.5}  # fmt: skip
    strategy = build_strategy(config(scheme="individual", **options), [(10,)])
    assert strategy.local_batch == 5 and strategy.policy.equal_slots
    assert (strategy.patience, strategy.min_delta, strategy.max_rounds) == (7, 0.2, 9)
    assert strategy.time_budget_s == 12.5


def test_user_policy_by_import_path():
    policy = scheme_policy(config(scheme="test_schemes:SpeedProportionalPolicy"))
    allocation = policy.allocate(instance(max_batch=60))  # CPUs at 1, 2 and 3 GHz
    assert allocation.batch_sizes.tolist() == [20, 40, 60]
    assert allocation.policy == "speed-proportional"


def test_unknown_scheme_is_rejected_and_model_schemes_pass_the_check():
    with pytest.raises(PolicyError, match="unknown policy 'nope'"):
        check_scheme(config(scheme="nope"))
    with pytest.raises(PolicyError, match="cannot import"):
        check_scheme(config(scheme="no_such_module:Policy"))
    for scheme in SCHEME_NAMES:
        check_scheme(config(scheme=scheme))
