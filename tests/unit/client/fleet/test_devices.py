import math

import numpy as np
import pytest

from client.fleet import (
    CPU_HZ_TIERS,
    MIN_DISTANCE_M,
    CpuProfile,
    FleetConfig,
    FleetError,
    GpuProfile,
    Workload,
    derive_device,
    fading_powers,
    profile_record,
    with_overrides,
)
from scheduler.channel import path_gain

WORKLOAD = Workload(training_flops_per_sample=2e6, update_flops=1e5)


def _fleet(num=12, **config):
    return [derive_device(pid, num, FleetConfig(**config), WORKLOAD) for pid in range(num)]


def test_cpu_clocks_come_in_equal_thirds_by_partition_id():
    clocks = [d.compute.cpu_hz for d in _fleet(12)]
    assert clocks == [0.7e9] * 4 + [1.4e9] * 4 + [2.1e9] * 4
    assert sorted({d.compute.cpu_hz for d in _fleet(7)}) == list(CPU_HZ_TIERS)


def test_cpu_cycles_are_model_flops_times_cycles_per_flop():
    device = _fleet(3, cycles_per_flop=0.5)[0]
    assert device.compute == CpuProfile(0.7e9, cycles_per_sample=1e6, update_cycles=5e4)


def test_positions_are_seeded_and_inside_the_cell():
    fleet = _fleet(200, seed=4)
    distances = np.array([d.distance_m for d in fleet])
    assert distances.min() >= MIN_DISTANCE_M and distances.max() <= 200.0
    # uniform in the disc: P(d <= R / 2) ~ 1/4
    assert 0.15 < np.mean(distances <= 100.0) < 0.35
    for device in fleet[:5]:
        assert device.path_gain == pytest.approx(float(path_gain(device.distance_m)))
    assert [d.distance_m for d in _fleet(5, seed=4)] == list(distances[:5])
    assert [d.distance_m for d in _fleet(5, seed=5)] != list(distances[:5])


def test_gpu_tiers_are_one_two_three_times_as_fast():
    config = {
        "scenario": "gpu",
        "gpu_flops": 1e12,
        "gpu_batch_threshold": 8,
        "gpu_overhead_s": 3e-3,
    }
    slow, mid, fast = (_fleet(3, **config)[i].compute for i in range(3))
    assert slow == GpuProfile(
        latency_floor_s=3e-3 + 8 * 2e-6, latency_slope_s=2e-6, batch_threshold=8, update_s=1e-7
    )
    for profile, speedup in ((mid, 2), (fast, 3)):
        assert profile.latency_slope_s == pytest.approx(slow.latency_slope_s / speedup)
        assert profile.latency_floor_s == pytest.approx(slow.latency_floor_s / speedup)
        assert profile.update_s == pytest.approx(slow.update_s / speedup)


def test_partition_id_outside_the_fleet_is_rejected():
    with pytest.raises(FleetError, match=r"^partition-id: must be in \[0, 3\), got 3$"):
        derive_device(3, 3, FleetConfig(), WORKLOAD)


def test_fading_is_exponential_and_seeded_per_round():
    samples = np.array([fading_powers(1, 2, r) for r in range(4000)])
    assert samples.mean() == pytest.approx(1.0, abs=0.06)  # Exp(1)
    assert np.corrcoef(samples.T)[0, 1] == pytest.approx(0.0, abs=0.06)  # up, down independent
    assert fading_powers(1, 2, 3) == fading_powers(1, 2, 3) != fading_powers(1, 2, 4)
    assert fading_powers(1, 2, 3) != fading_powers(1, 3, 3)


def test_profile_record_follows_the_message_contract():
    cpu, gpu = _fleet(2)[1], _fleet(2, scenario="gpu")[1]
    record = profile_record(cpu, server_round=3, num_examples=99, seed=0, num_partitions=2)
    assert record == {
        "partition-id": 1,
        "num-partitions": 2,
        "num-examples": 99,
        "scenario": "cpu",
        "path-gain": cpu.path_gain,
        "fading-up": fading_powers(0, 1, 3)[0],
        "fading-down": fading_powers(0, 1, 3)[1],
        "cpu-hz": 1.4e9,
        "cycles-per-sample": 2e6,
        "update-cycles": 1e5,
    }
    gpu_keys = set(profile_record(gpu, 3, 99, 0, 2)) - set(record)
    assert gpu_keys == {"latency-floor-s", "latency-slope-s", "batch-threshold", "update-s"}


def test_node_config_overrides_device_fields():
    device = _fleet(3)[0]
    node_config = {"partition-id": 0, "data-dir": "/x", "cpu-hz": 3e9, "path-gain-db": -100.0}
    changed = with_overrides(device, node_config)
    assert changed.compute == CpuProfile(3e9, 2e6, 1e5)
    assert changed.path_gain == pytest.approx(1e-10) and changed.distance_m is None
    assert with_overrides(device, {"partition-id": 0}) is device
    moved = with_overrides(changed, {"distance-m": 50.0})
    assert moved.distance_m == 50.0 and moved.path_gain == pytest.approx(float(path_gain(50.0)))
    with pytest.raises(FleetError, match=r"^node-config.cpu-hz: must be > 0, got 0$"):
        with_overrides(device, {"cpu-hz": 0})


def test_fields_round_trip_through_path_gain_db():
    device = with_overrides(_fleet(1)[0], {"path-gain-db": -93.5})
    assert device.fields()["path_gain_db"] == pytest.approx(-93.5)
    assert math.isclose(device.path_gain, 10 ** (-9.35))
