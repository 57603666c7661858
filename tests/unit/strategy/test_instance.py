import numpy as np
import pytest

from scheduler import Instance
from scheduler.channel import ChannelParams, average_rate_bps, instantaneous_rate_bps, path_gain
from strategy.instance import InstanceSettings, build_instance, device_entry, link_rates
from task.protocol import ProfileReport, ReplyError

GAIN = float(path_gain(120.0))


def cpu_fields(pid=0, **extra):
    return {
        "partition-id": pid,
        "num-partitions": 8,
        "num-examples": 100,
        "scenario": "cpu",
        "path-gain": GAIN,
        "fading-up": 0.25,
        "fading-down": 2.0,
        "cpu-hz": 1.4e9,
        "cycles-per-sample": 2e6,
        "update-cycles": 1e5,
        **extra,
    }


def cpu_profile(pid=0, **extra):
    return ProfileReport.from_fields(cpu_fields(pid, **extra), "cpu")


def test_average_rate_from_path_gain_by_default():
    up, down = link_rates(cpu_profile(), InstanceSettings("cpu", 1e6))
    assert up == down == pytest.approx(float(average_rate_bps(GAIN)))


def test_fading_uses_this_rounds_samples_per_link():
    channel = ChannelParams(bandwidth_hz=5e6)
    up, down = link_rates(cpu_profile(), InstanceSettings("cpu", 1e6, channel=channel, fading=True))
    assert up == pytest.approx(float(instantaneous_rate_bps(GAIN, 0.25, channel)))
    assert down == pytest.approx(float(instantaneous_rate_bps(GAIN, 2.0, channel)))
    assert up < down


def test_gpu_profile_maps_to_gpu_fields():
    fields = {
        "partition-id": 3,
        "num-partitions": 8,
        "num-examples": 100,
        "scenario": "gpu",
        "path-gain": GAIN,
        "fading-up": 1.0,
        "fading-down": 1.0,
        "latency-floor-s": 0.01,
        "latency-slope-s": 1e-4,
        "batch-threshold": 32,
        "update-s": 1e-3,
    }
    entry = device_entry(ProfileReport.from_fields(fields, "gpu"), InstanceSettings("gpu", 1e6))
    assert entry["latency_floor_s"] == 0.01 and entry["batch_threshold"] == 32.0
    assert set(entry) == {
        "uplink_rate_bps",
        "downlink_rate_bps",
        "latency_floor_s",
        "latency_slope_s",
        "batch_threshold",
        "update_s",
    }


def test_scenario_mismatch_names_the_partition():
    with pytest.raises(ValueError, match="partition 2: profile scenario 'cpu'"):
        device_entry(cpu_profile(2), InstanceSettings("gpu", 1e6))


def test_missing_field_is_named():
    fields = cpu_fields(1)
    del fields["cpu-hz"]
    with pytest.raises(ReplyError, match="profile lacks 'cpu-hz'"):
        ProfileReport.from_fields(fields, "cpu")


def test_report_round_trips_through_its_record():
    report = cpu_profile(2)
    assert ProfileReport.from_record(report.to_record(), "cpu") == report
    assert report.fields() == cpu_fields(2)


def test_instance_is_accepted_by_the_scheduler_in_given_order():
    settings = InstanceSettings("cpu", 32 * 1000.0, frame_s=0.02, min_batch=2, max_batch=64)
    profiles = [cpu_profile(0), cpu_profile(1, **{"cpu-hz": 0.7e9})]
    instance = Instance.from_dict(build_instance(profiles, settings))
    assert instance.gradient_bits == 32000.0
    assert (instance.min_batch, instance.max_batch, instance.uplink_frame_s) == (2, 64, 0.02)
    np.testing.assert_allclose(instance.devices["cpu_hz"], [1.4e9, 0.7e9])
