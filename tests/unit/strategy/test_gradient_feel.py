"""Gradient-based FEEL (Sec. VI-C): B_k = N_k with equal slots, charged for N_k, not B^max."""

import numpy as np
import pytest

from scheduler import Instance
from scheduler.latency import compute_s
from server.build import build_strategy
from strategy.gradient_feel import LocalDataPolicy
from strategy.instance import build_instance
from task.config import resolve_run_config
from task.protocol import ProfileReport


def report(pid, examples, cpu_hz):
    compute = {"cpu-hz": cpu_hz, "cycles-per-sample": 2e6, "update-cycles": 1e5}
    return ProfileReport(pid, examples, "cpu", 1e-9, 1.0, 1.0, compute, 8)


@pytest.fixture
def strategy():
    return build_strategy(resolve_run_config({"scheme": "gradient-feel"}), [(1000,)])


def test_every_device_takes_its_whole_local_data_with_equal_slots(strategy):
    reports = [report(0, 300, 7e8), report(1, 50, 1.4e9), report(2, 1000, 2.1e9)]
    settings = strategy._round_settings(reports)
    assert settings.max_batch == 1000  # the largest N_k, not min(128, smallest N_k) = 50
    instance = Instance.from_dict(build_instance(reports, settings))
    allocation = strategy._allocate(instance, reports, server_round=1)
    assert allocation.batch_sizes.tolist() == [300, 50, 1000]
    assert allocation.policy == "gradient-feel" and strategy.policy.name == "gradient-feel"
    np.testing.assert_allclose(allocation.uplink_slots_s, 0.01 / 3)
    np.testing.assert_allclose(allocation.downlink_slots_s, 0.01 / 3)
    # the compute is charged for N_k (Eq. 9): C N_k / f
    np.testing.assert_allclose(
        compute_s(instance, allocation.batch_sizes), 2e6 * np.array([300, 50, 1000]) /
        np.array([7e8, 1.4e9, 2.1e9])
    )  # fmt: skip


def test_the_policy_rejects_a_local_dataset_above_the_bound():
    devices = [{"uplink_rate_bps": 1e7, "downlink_rate_bps": 1e7, "cpu_hz": 1e9,
                "cycles_per_sample": 1e6, "update_cycles": 1e4}]  # fmt: skip
    instance = Instance.from_dict(
        {"scenario": "cpu", "gradient_bits": 1e6, "max_batch": 128, "devices": devices}
    )
    with pytest.raises(ValueError, match="batch_sizes"):
        LocalDataPolicy([300]).allocate(instance)
