"""Plausibility bounds on the compute profile: FLOPs per cycle or per second of the model's."""

import json
import re

import pytest
from support.paths import ROOT
from support.replies import gpu_profile, profile

from client.fleet import FleetConfig, derive_device, profile_record
from strategy import InstanceSettings
from strategy.instance import ProfileBounds
from strategy.validation import check_profile, implausible
from task.config import resolve_run_config
from task.protocol import ProfileReport, ReplyError
from task.system_model import Workload

pytestmark = pytest.mark.security

# The digits CNN's FLOPs (README), and about DenseNet121's at 32x32x3.
CNN = Workload(training_flops_per_sample=2.05e6, update_flops=1.06e5)
DENSENET = Workload(training_flops_per_sample=5.3e9, update_flops=1.4e7)


def settings(scenario, workload, **bounds):
    return InstanceSettings(
        scenario, gradient_size_bits=32e4, bounds=ProfileBounds(**bounds), workload=workload
    )


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        (
            {"cycles-per-sample": 1000.0},
            "cycles-per-sample 1000.0: 2050 FLOPs per cycle, above max-flops-per-cycle 1024",
        ),
        (
            {"update-cycles": 50.0},
            "update-cycles 50.0: 2120 FLOPs per cycle, above max-flops-per-cycle 1024",
        ),
        (
            {"cycles-per-sample": 0.0},
            "cycles-per-sample 0.0: inf FLOPs per cycle, above max-flops-per-cycle 1024",
        ),
        (
            {"cycles-per-sample": 1e30},
            "cycles-per-sample 1e+30 at cpu-hz 1e+09: 2.05e-15 FLOP/s, below min-flops 1e+07",
        ),
        (
            {"cpu-hz": 1.0},
            "cycles-per-sample 1000000.0 at cpu-hz 1: 2.05 FLOP/s, below min-flops 1e+07",
        ),
        (
            {"update-cycles": 2e10},
            "update-cycles 20000000000.0 at cpu-hz 1e+09: 5300 FLOP/s, below min-flops 1e+07",
        ),
    ],
)
def test_a_cpu_profile_claiming_too_fast_or_too_slow_a_cpu_is_excluded(changes, reason):
    cpu = settings("cpu", CNN)
    assert check_profile(profile(), cpu)  # 2.05 FLOPs per cycle, 2.05e9 FLOP/s
    with pytest.raises(ReplyError, match=re.escape(f"implausible profile: {reason}")):
        check_profile(profile(**changes), cpu)


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        (
            {"latency-floor-s": 1e-4, "latency-slope-s": 0.0},
            "latency-floor-s and -slope-s: 0.0001 s for a batch of 128: 6.784e+15 FLOP/s, "
            "above max-gpu-flops 1e+15",
        ),
        ({"update-s": 1e-9}, "update-s 1e-09: 1.4e+16 FLOP/s, above max-gpu-flops 1e+15"),
        (
            {"latency-floor-s": 1e6},
            "latency-floor-s and -slope-s: 1000000.0 s for a batch of 16: 84800 FLOP/s, "
            "below min-flops 1e+07",
        ),
        ({"update-s": 10.0}, "update-s 10.0: 1.4e+06 FLOP/s, below min-flops 1e+07"),
    ],
)
def test_a_gpu_profile_claiming_too_fast_or_too_slow_a_gpu_is_excluded(changes, reason):
    gpu = settings("gpu", DENSENET)
    assert check_profile(gpu_profile(), gpu)  # 8.5e13 FLOP/s at B^th, 5.6e13 at B^max
    with pytest.raises(ReplyError, match=re.escape(f"implausible profile: {reason}")):
        check_profile(gpu_profile(**changes), gpu)


def test_a_flat_measured_gpu_curve_is_plausible_and_checked_at_b_max():
    """The profiler fits slope 0 to a curve with no linear part, B^th at the largest batch."""
    flat = {"latency-slope-s": 0.0, "batch-threshold": 128.0, "latency-floor-s": 0.02}
    assert check_profile(gpu_profile(**flat), settings("gpu", DENSENET))
    with pytest.raises(ReplyError, match=re.escape("for a batch of 128: 3.392e+13 FLOP/s")):
        check_profile(gpu_profile(**flat), settings("gpu", DENSENET, max_gpu_flops=1e13))


def test_without_a_workload_the_compute_profile_is_not_bounded():
    lie = profile(**{"cycles-per-sample": 1e-3})
    assert implausible(ProfileReport.from_fields(lie, "cpu"), settings("cpu", None)) is None


@pytest.mark.parametrize("scenario", ["cpu", "gpu"])
@pytest.mark.parametrize("cycles_per_flop", [0.01, 0.1, 1.0, 10.0])
@pytest.mark.parametrize("workload", [CNN, DENSENET])
def test_every_fleet_device_is_plausible_at_the_defaults(scenario, cycles_per_flop, workload):
    """Sec. VI-B's clocks, the GPU tiers, at the paper-scale runs' cycles per FLOP and more."""
    config = resolve_run_config({"scenario": scenario})
    fleet = FleetConfig(seed=0, scenario=scenario, cycles_per_flop=cycles_per_flop)
    for pid in range(6):
        device = derive_device(pid, 6, fleet, workload)
        report = profile_record(device, 1, 300, seed=0, num_partitions=6)
        check_profile(report, settings(scenario, workload, max_cpu_hz=config["max-cpu-hz"]))


@pytest.mark.parametrize("scenario", ["cpu", "gpu"])
def test_the_profile_measured_on_a_cpu_is_plausible(scenario):
    """docs/img/profile_cnn_cpu.json: the digits CNN timed on one EPYC thread."""
    measured = json.loads((ROOT / "docs" / "img" / "profile_cnn_cpu.json").read_text())
    flops = measured["flops"]
    workload = Workload(flops["training_per_sample"], flops["update"])
    fields = {k.replace("_", "-"): v for k, v in measured[f"{scenario}_profile"].items()}
    report = profile(**{"cpu-hz": None, "cycles-per-sample": None, "update-cycles": None})
    assert check_profile({**report, "scenario": scenario, **fields}, settings(scenario, workload))
