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


BAD_INPUT = [
    (["--model", "vgg"], "--model", "'vgg'"),
    (["--model", "cnn", "--device", "tpu"], "--device", "'tpu'"),
    (["--model", "cnn", "--batches", "1,x,4"], "--batches", "'1,x,4'"),
    (["--model", "cnn", "--batches", "0,4"], "--batches", "'0,4'"),
    (["--model", "cnn", "--max-batch", "0"], "--max-batch", "0"),
    (["--model", "cnn", "--repeats", "-1"], "--repeats", "-1"),
    (["--model", "cnn", "--cpu-hz", "0"], "--cpu-hz", "0"),
    (["--model", "cnn", "--cpu-hz", "nan"], "--cpu-hz", "nan"),
    (["--model", "cnn", "--image-size", "0"], "--image-size", "0"),
    (["--model", "cnn", "--in-channels", "-3"], "--in-channels", "-3"),
    (["--model", "cnn", "--warmup", "-1"], "--warmup", "-1"),
]


@pytest.mark.parametrize(("argv", "option", "value"), BAD_INPUT)
def test_bad_input_exits_2_with_one_line_naming_the_option(argv, option, value, tmp_path, capsys):
    out = tmp_path / "p.json"

    code = main(["profile", *argv, "--out", str(out)])

    assert code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert option in err and value in err
    assert not out.exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_without_a_gpu_is_a_usage_error(capsys):
    assert main(["profile", "--model", "cnn", "--device", "cuda"]) == 2
    err = capsys.readouterr().err
    assert "--device" in err and "cuda" in err


def test_a_malformed_number_is_rejected_by_the_parser(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["profile", "--model", "cnn", "--repeats", "three"])

    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--repeats" in err and "three" in err
