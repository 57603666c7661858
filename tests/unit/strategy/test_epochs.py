"""Latency of model-based rounds: local epoch compute and the model exchange (strategy.epochs)."""

import numpy as np
import pytest

from scheduler import Instance
from scheduler.latency import downlink_airtime_s, uplink_airtime_s
from strategy.epochs import epoch_compute_s, exchange_allocation, exchange_slots

FRAME_S = 0.01


def cpu_instance():
    devices = [
        {"uplink_rate_bps": rate, "downlink_rate_bps": 2 * rate, "cpu_hz": hz,
         "cycles_per_sample": 1e6, "update_cycles": 1e4}
        for rate, hz in ((1e7, 1e9), (4e7, 2e9), (2e7, 3e9))
    ]  # fmt: skip
    return Instance.from_dict({"scenario": "cpu", "gradient_bits": 1e6, "devices": devices})


def test_cpu_epoch_is_n_c_over_f_plus_one_update_per_local_step():
    instance = cpu_instance()
    sizes = np.array([25, 30, 7])
    hz = np.array([1e9, 2e9, 3e9])
    steps = np.ceil(sizes / 10)
    expected = sizes * 1e6 / hz + steps * 1e4 / hz
    np.testing.assert_allclose(epoch_compute_s(instance, sizes, 10), expected)


def test_gpu_epoch_sums_the_latency_of_each_mini_batch():
    device = {"uplink_rate_bps": 1e7, "downlink_rate_bps": 1e7, "latency_floor_s": 0.01,
              "latency_slope_s": 0.001, "batch_threshold": 4, "update_s": 0.002}  # fmt: skip
    instance = Instance.from_dict({"scenario": "gpu", "gradient_bits": 1e6, "devices": [device]})
    # 10 examples in mini-batches of 6: one batch of 6 (floor + 2 slopes), one of 4 (floor).
    expected = (0.01 + 2 * 0.001) + 0.01 + 2 * 0.002
    assert epoch_compute_s(instance, [10], 6)[0] == pytest.approx(expected)


def test_min_max_slots_make_every_upload_end_together():
    instance = cpu_instance()
    ready = np.array([0.3, 0.1, 0.2])
    up, down = exchange_slots(instance, ready, equal=False)
    assert up.sum() == pytest.approx(FRAME_S) and down.sum() == pytest.approx(FRAME_S)
    finish = ready + uplink_airtime_s(instance) * FRAME_S / up
    np.testing.assert_allclose(finish, finish[0])
    downloads = downlink_airtime_s(instance) * FRAME_S / down
    np.testing.assert_allclose(downloads, downloads[0])
    allocation = exchange_allocation(instance, ready, [25, 30, 7], (up, down), policy="m")
    assert allocation.round_latency_s == pytest.approx(finish[0] + downloads[0])
    assert allocation.global_batch == 62 and allocation.policy == "m"
    path = allocation.critical_path
    assert path["update_s"] == 0.0
    assert path["compute_s"] + path["upload_s"] + path["download_s"] == pytest.approx(
        allocation.round_latency_s
    )


def test_equal_slots_are_a_kth_of_the_frame_and_never_beat_min_max():
    instance = cpu_instance()
    ready = np.array([0.3, 0.1, 0.2])
    up, down = exchange_slots(instance, ready, equal=True)
    np.testing.assert_allclose(up, FRAME_S / 3)
    np.testing.assert_allclose(down, FRAME_S / 3)
    equal = exchange_allocation(instance, ready, [1, 1, 1], (up, down), policy="m")
    best = exchange_allocation(
        instance, ready, [1, 1, 1], exchange_slots(instance, ready, equal=False), policy="m"
    )
    expected = np.max(ready + 3 * uplink_airtime_s(instance)) + np.max(
        3 * downlink_airtime_s(instance)
    )
    assert equal.round_latency_s == pytest.approx(expected)
    assert best.round_latency_s < equal.round_latency_s
