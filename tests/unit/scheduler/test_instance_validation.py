"""Instance validation and property tests of the allocation invariants (hypothesis)."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from scheduler import Instance, InstanceError, evaluate, get_policy

CPU_DEVICE = {
    "uplink_rate_bps": 9e7,
    "downlink_rate_bps": 9e7,
    "cpu_hz": 7e8,
    "cycles_per_sample": 2e6,
    "update_cycles": 1e5,
}
GPU_DEVICE = {
    "uplink_rate_bps": 9e7,
    "downlink_rate_bps": 9e7,
    "latency_floor_s": 0.01,
    "latency_slope_s": 1e-4,
    "batch_threshold": 16,
    "update_s": 1e-3,
}


def instance_dict(scenario="cpu", k=2, **top):
    device = CPU_DEVICE if scenario == "cpu" else GPU_DEVICE
    return {"scenario": scenario, "gradient_bits": 1e6, "devices": [dict(device)] * k, **top}


@pytest.mark.parametrize(
    ("mutate", "field", "message"),
    [
        (lambda d: d.update(scenario="tpu"), "scenario", "must be one of cpu, gpu"),
        (lambda d: d.pop("gradient_bits"), "gradient_bits", "missing field"),
        (lambda d: d.update(colour=1), "colour", "unknown field"),
        (lambda d: d.update(gradient_bits="big"), "gradient_bits", "must be a number"),
        (lambda d: d.update(gradient_bits=True), "gradient_bits", "must be a number"),
        (lambda d: d.update(uplink_frame_s=0), "uplink_frame_s", "must be > 0"),
        (lambda d: d.update(downlink_frame_s=-1.0), "downlink_frame_s", "must be > 0"),
        (lambda d: d.update(min_batch=8, max_batch=4), "min_batch", "must be <= max_batch"),
        (lambda d: d.update(max_batch=2.5), "max_batch", "whole number"),
        (lambda d: d.update(devices=[]), "devices", "non-empty list"),
        (lambda d: d.update(devices=[3]), "devices[0]", "JSON object"),
        (lambda d: d["devices"][1].update(cpu_hz=-1.0), "devices[1].cpu_hz", "must be > 0"),
        (lambda d: d["devices"][1].update(cpu_hz=math.nan), "devices[1].cpu_hz", "finite"),
        (
            lambda d: d["devices"][0].update(uplink_rate_bps=math.inf),
            "devices[0].uplink_rate_bps",
            "finite",
        ),
        (lambda d: d["devices"][0].update(update_cycles=-5), "devices[0].update_cycles", ">= 0"),
        (
            lambda d: d["devices"][1].pop("cycles_per_sample"),
            "devices[1].cycles_per_sample",
            "missing",
        ),
        (
            lambda d: d["devices"][0].update(latency_slope_s=1.0),
            "devices[0].latency_slope_s",
            "unknown",
        ),
    ],
)
def test_invalid_instances_name_the_field(mutate, field, message):
    data = instance_dict()
    data["devices"] = [dict(d) for d in data["devices"]]
    mutate(data)
    with pytest.raises(InstanceError, match=message) as caught:
        Instance.from_dict(data)
    assert caught.value.field == field


def test_round_trip():
    data = instance_dict("gpu", 3, max_batch=64)
    assert (
        Instance.from_dict(Instance.from_dict(data).to_dict()).to_dict()
        == Instance.from_dict(data).to_dict()
    )


json_values = st.one_of(
    st.none(),
    st.booleans(),
    st.text(max_size=4),
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(-(10**12), 10**12),
    st.lists(st.integers(), max_size=2),
)


@settings(max_examples=200, deadline=None)
@given(
    scenario=st.sampled_from(["cpu", "gpu"]),
    field=st.sampled_from(
        sorted(set(CPU_DEVICE) | set(GPU_DEVICE) | {"gradient_bits", "min_batch"})
    ),
    index=st.integers(0, 1),
    value=json_values,
)
# A subnormal per-sample time: free compute that once divided by zero.
@example(scenario="cpu", field="cycles_per_sample", index=0, value=2.225073858507203e-309)
def test_fuzzed_fields_give_clean_errors_or_valid_allocations(scenario, field, index, value):
    data = copy.deepcopy(instance_dict(scenario))
    data["devices"] = [dict(d) for d in data["devices"]]
    target = data if field in ("gradient_bits", "min_batch") else data["devices"][index]
    target[field] = value
    try:
        instance = Instance.from_dict(data)
    except InstanceError as exc:
        assert exc.field and "\n" not in str(exc)
        return
    check_invariants(instance, get_policy("optimal").allocate(instance))


def check_invariants(instance, allocation):
    """Slots fill at most each frame, batches stay in bounds, reported latencies recompute."""
    assert allocation.uplink_slots_s.sum() <= instance.uplink_frame_s * (1 + 1e-9)
    assert allocation.downlink_slots_s.sum() <= instance.downlink_frame_s * (1 + 1e-9)
    assert np.all(allocation.batch_sizes >= instance.min_batch)
    assert np.all(allocation.batch_sizes <= instance.max_batch)
    again = evaluate(
        instance,
        allocation.batch_sizes,
        allocation.uplink_slots_s,
        allocation.downlink_slots_s,
        policy="check",
    )
    assert allocation.round_latency_s == pytest.approx(again.round_latency_s, rel=1e-12)
    # The relaxed optimum is solved to 1e-6 relative, so it bounds integer answers up to that.
    assert allocation.efficiency <= allocation.relaxed_efficiency * (1 + 1e-6)


positive = st.floats(1e-3, 1e3)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    scenario=st.sampled_from(["cpu", "gpu"]),
    k=st.integers(1, 8),
    scales=st.lists(st.tuples(positive, positive, positive, positive), min_size=8, max_size=8),
    bits=st.floats(1e3, 1e9),
    bounds=st.tuples(st.integers(1, 64), st.integers(0, 128)),
    policy=st.sampled_from(["optimal", "online", "full", "random", "equal"]),
)
def test_allocation_invariants_hold(scenario, k, scales, bits, bounds, policy):
    min_batch, extra = bounds
    devices = []
    for up, down, speed, other in scales[:k]:
        base = dict(CPU_DEVICE if scenario == "cpu" else GPU_DEVICE)
        base["uplink_rate_bps"] *= up
        base["downlink_rate_bps"] *= down
        if scenario == "cpu":
            base["cpu_hz"] *= speed
            base["update_cycles"] *= other
        else:
            base["latency_slope_s"] *= speed
            base["batch_threshold"] = other * 16
        devices.append(base)
    data = {
        "scenario": scenario,
        "gradient_bits": bits,
        "devices": devices,
        "min_batch": min_batch,
        "max_batch": min_batch + extra,
    }
    try:
        instance = Instance.from_dict(data)
    except InstanceError as exc:  # the scales multiply up past what doubles resolve
        assert "out of the range the scheduler resolves" in exc.message
        return
    check_invariants(instance, get_policy(policy).allocate(instance))
