import json

import numpy as np
import pytest

from client.profiler.fit import fit_gpu
from client.profiler.report import build_report, plot_profiles, write_json
from client.profiler.timing import Timings

BATCHES = np.array([1, 2, 4, 8, 16, 32, 64])


def synthetic_report(model, floor, slope, threshold):
    step = floor + slope * np.maximum(BATCHES - threshold, 0)
    update = np.linspace(1e-3, 2e-3, BATCHES.size)
    timings = Timings(BATCHES, step, update, repeats=5, warmup=2, threads=1)
    return build_report(
        model_name=model,
        input_shape=(3, 32, 32),
        device="cuda",
        device_name="Test GPU",
        timings=timings,
        cpu_hz=1e9,
        training_flops_per_sample=2e6,
        update_flops=1e5,
    )


def test_report_holds_the_scheduler_device_fields_of_both_scenarios():
    report = synthetic_report("resnet18", 0.02, 5e-4, 8.0)

    fit = fit_gpu(BATCHES, [m["step_s"] for m in report["measurements"]])
    assert report["gpu_profile"] == {
        "latency_floor_s": fit.latency_floor_s,
        "latency_slope_s": fit.latency_slope_s,
        "batch_threshold": fit.batch_threshold,
        "update_s": pytest.approx(1.5e-3),  # median of the update times, Eq. (28)
    }
    assert report["gpu_profile"]["batch_threshold"] == pytest.approx(8.0)
    cpu = report["cpu_profile"]
    assert cpu["update_cycles"] == pytest.approx(1.5e-3 * 1e9)  # Eq. (10) at the clock
    assert cpu["cycles_per_sample"] == pytest.approx(report["cpu_fit"]["seconds_per_sample"] * 1e9)
    assert report["flops"]["cycles_per_flop"] == pytest.approx(cpu["cycles_per_sample"] / 2e6)
    assert report["threads"] == 1


def test_json_round_trips_and_several_profiles_plot_together(tmp_path):
    reports = [
        synthetic_report("resnet18", 0.02, 5e-4, 8.0),
        synthetic_report("densenet121", 0.05, 1e-3, 16.0),
    ]
    write_json(reports[0], tmp_path / "a" / "p.json")
    plot_profiles(
        [json.loads((tmp_path / "a" / "p.json").read_text()), reports[1]], tmp_path / "b" / "f.png"
    )

    assert (tmp_path / "b" / "f.png").read_bytes().startswith(b"\x89PNG")
