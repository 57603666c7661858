"""`feel profile`: bad options exit 2 with one line naming the option; nothing is profiled."""

import pytest
import torch

from cli.main import main

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
