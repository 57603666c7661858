"""`feel profile` in process: the JSON profile and the plot of a small CPU run."""

import json

import pytest
import torch

from cli.main import main
from client.profiler.fit import GpuFit

SMALL = ["--max-batch", "16", "--repeats", "2", "--warmup", "1"]


def test_profile_cnn_on_cpu_writes_the_json_profile_and_the_plot(tmp_path, capsys):
    out, plot = tmp_path / "cnn.json", tmp_path / "plots" / "cnn.png"

    outputs = ["--out", str(out), "--plot", str(plot)]
    code = main(
        ["profile", "--model", "cnn", "--device", "cpu", *SMALL, "--cpu-hz", "2e9", *outputs]
    )

    assert code == 0
    report = json.loads(out.read_text())
    assert [m["batch"] for m in report["measurements"]] == [1, 2, 3, 4, 6, 8, 12, 16]
    assert all(m["step_s"] > 0 and m["update_s"] > 0 for m in report["measurements"])
    assert report["input_shape"] == [1, 8, 8]
    assert report["device"] == "cpu"
    assert report["torch_version"] == torch.__version__
    gpu = report["gpu_profile"]
    assert set(gpu) == {"latency_floor_s", "latency_slope_s", "batch_threshold", "update_s"}
    assert gpu["latency_floor_s"] > 0 and gpu["latency_slope_s"] >= 0
    assert 1 <= gpu["batch_threshold"] <= 16
    fit = GpuFit(**report["gpu_fit"])
    assert fit.latency_floor_s == gpu["latency_floor_s"]
    assert fit.rmse_s >= 0
    cpu = report["cpu_profile"]
    assert cpu["cpu_hz"] == 2e9
    assert cpu["cycles_per_sample"] == pytest.approx(report["cpu_fit"]["seconds_per_sample"] * 2e9)
    assert cpu["update_cycles"] == pytest.approx(gpu["update_s"] * 2e9)
    assert report["flops"]["training_per_sample"] > 0
    assert plot.read_bytes().startswith(b"\x89PNG")
    printed = capsys.readouterr().out
    assert "batch_threshold=" in printed and "cycles_per_sample=" in printed


def test_explicit_batches_replace_the_default_grid(tmp_path):
    out = tmp_path / "p.json"

    code = main(
        ["profile", "--model", "cnn", "--batches", "8,2,4,2", "--repeats", "1", "--out", str(out)]
    )

    assert code == 0
    assert [m["batch"] for m in json.loads(out.read_text())["measurements"]] == [2, 4, 8]
