"""Device energy of a round (scheduler.energy), computed by hand on two devices."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from support.scheduler_cases import small_instance

from scheduler import Instance, InstanceError, evaluate, get_policy, restrict
from scheduler.allocation import equal_slots
from strategy.rounds import Charge

CPU = {
    "scenario": "cpu",
    "gradient_bits": 1e6,
    "uplink_power_w": 0.5,
    "effective_capacitance": 2e-28,
    "max_batch": 64,
    "devices": [
        {
            "uplink_rate_bps": 1e6,
            "downlink_rate_bps": 4e6,
            "cpu_hz": 1e9,
            "cycles_per_sample": 1e6,
            "update_cycles": 1e7,
        },
        {
            "uplink_rate_bps": 2e6,
            "downlink_rate_bps": 4e6,
            "cpu_hz": 2e9,
            "cycles_per_sample": 1e6,
            "update_cycles": 1e7,
        },
    ],
}


def _cpu(**fields) -> Instance:
    return Instance.from_dict(CPU | fields)


def test_cpu_energy_is_kappa_c_b_f_squared_plus_the_update_and_the_upload_airtime():
    instance = _cpu()
    allocation = evaluate(instance, [10, 20], [0.004, 0.006], [0.005, 0.005], policy="hand")
    # kappa C B f^2 + kappa M f^2: 2e-28 * (1e6 * 10 + 1e7) * 1e18, 2e-28 * (1e6 * 20 + 1e7) * 4e18
    np.testing.assert_allclose(allocation.energy.compute_j, [4e-3, 2.4e-2], rtol=1e-12)
    # P s / R: 0.5 W for 1 s and 0.5 s of airtime
    np.testing.assert_allclose(allocation.energy.upload_j, [0.5, 0.25], rtol=1e-12)
    assert allocation.energy.total_j == pytest.approx(0.5 + 0.25 + 4e-3 + 2.4e-2)


def test_the_upload_energy_is_the_airtime_not_the_slot():
    instance = _cpu()
    short = evaluate(instance, [10, 20], [0.001, 0.009], [0.005, 0.005], policy="hand")
    long = evaluate(instance, [10, 20], [0.009, 0.001], [0.005, 0.005], policy="hand")
    assert short.round_latency_s != long.round_latency_s
    np.testing.assert_array_equal(short.energy.upload_j, long.energy.upload_j)


def test_idle_listening_is_counted_only_if_configured_over_the_rest_of_the_round():
    slots = ([0.004, 0.006], [0.005, 0.005])
    silent = evaluate(_cpu(), [10, 20], *slots, policy="hand")
    np.testing.assert_array_equal(silent.energy.idle_j, [0.0, 0.0])
    allocation = evaluate(_cpu(idle_power_w=0.1), [10, 20], *slots, policy="hand")
    # T = max(compute + upload) + max(download + update): 0.01 + 1 / 0.4 and 0.01 + 0.5 / 0.6
    # for the uplink, 0.25 / 0.5 + 0.01 and 0.25 / 0.5 + 0.005 for the downlink.
    latency = 0.01 + 2.5 + 0.25 / 0.5 + 0.01
    assert allocation.round_latency_s == pytest.approx(latency)
    # 0.1 W over T less the computation (10 and 10 ms + 5 ms) and the airtime (1 s, 0.5 s)
    idle = [0.1 * (latency - 0.02 - 1.0), 0.1 * (latency - 0.015 - 0.5)]
    np.testing.assert_allclose(allocation.energy.idle_j, idle, rtol=1e-12)
    np.testing.assert_array_equal(allocation.energy.compute_j, silent.energy.compute_j)
    assert allocation.energy.total_j == pytest.approx(silent.energy.total_j + sum(idle))


def test_gpu_energy_is_the_board_power_over_compute_and_update():
    gpu = {
        "scenario": "gpu",
        "gradient_bits": 1e6,
        "uplink_power_w": 0.5,
        "gpu_power_w": 100.0,
        "devices": [
            {
                "uplink_rate_bps": 1e6,
                "downlink_rate_bps": 1e6,
                "latency_floor_s": 0.01,
                "latency_slope_s": 0.001,
                "batch_threshold": 8,
                "update_s": 0.002,
            }
        ],
    }
    allocation = evaluate(Instance.from_dict(gpu), [18], [0.01], [0.01], policy="hand")
    # 100 W over t_l + c (B - B_th) + t^M = 0.01 + 0.01 + 0.002 s (Eqs. 27-28)
    np.testing.assert_allclose(allocation.energy.compute_j, [2.2], rtol=1e-12)
    np.testing.assert_allclose(allocation.energy.upload_j, [0.5], rtol=1e-12)


def test_a_device_that_took_no_part_spent_nothing():
    instance = _cpu()
    slots = equal_slots(instance, instance.uplink_frame_s)
    scheduled = evaluate(instance, [10, 20], slots, slots, policy="hand")
    charge = Charge([3, 5], [5], scheduled, restrict(instance, scheduled, [1]))
    parts = charge.device_energy_j()
    assert parts["compute_j"] == [0.0, pytest.approx(2.4e-2)]
    assert parts["upload_j"] == [0.0, pytest.approx(0.25)]
    assert parts["idle_j"] == [0.0, 0.0]


def test_energy_parameters_are_validated_and_kept():
    assert _cpu().to_dict()["uplink_power_w"] == 0.5
    assert Instance.from_dict(_cpu().to_dict()).effective_capacitance == 2e-28
    with pytest.raises(InstanceError, match="gpu_power_w: must be >= 0, got -1"):
        _cpu(gpu_power_w=-1)


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 10_000))
def test_energy_adds_up_over_devices_and_grows_with_the_batch(seed):
    instance = small_instance(seed)
    allocation = get_policy("optimal").allocate(instance)
    energy = allocation.energy
    assert energy.total_j == pytest.approx(float(np.sum(energy.compute_j + energy.upload_j)))
    assert np.all(energy.compute_j >= 0) and np.all(energy.upload_j > 0)
    larger = np.minimum(allocation.batch_sizes + 1, instance.max_batch)
    more = evaluate(
        instance, larger, allocation.uplink_slots_s, allocation.downlink_slots_s, policy="x"
    )
    assert np.all(more.energy.compute_j >= energy.compute_j * (1 - 1e-12))
