"""``feel compare``: option checks, run-config overrides and the arguments of ``feel simulate``."""

import pytest

from cli.compare.runner import simulate_arguments
from cli.main import main
from task.config import resolve_run_config


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--clients", "0"], "--clients: must be >= 1, got 0"),
        (["--clients", "two"], "expected comma-separated int values"),
        (["--partitions", "iid,zipf"], "--partitions: unknown partition 'zipf'"),
        (["--schemes", "proposed,nope"], "--schemes: policy: unknown policy 'nope'"),
        (["--target-accuracy", "1.5"], "--target-accuracy: must be in (0, 1], got 1.5"),
        (["--time-budget", "-1"], "--time-budget: must be >= 0, got -1"),
        (["--engine", "ray"], "--engine: unknown engine 'ray'; choose from inprocess, flower"),
        (["--repeats", "0"], "--repeats: must be >= 1, got 0"),
        (["--sweep-learning-rates", "0.1,-2"], "--sweep-learning-rates: must be > 0, got -2"),
        (["--set", "model"], "--set: expected KEY=VALUE, got 'model'"),
        (["--set", "colour=red"], "--set: unknown run-config key 'colour'"),
        (["--set", "seed=3"], "--set: 'seed' is set by the grid; use its own option"),
        (["--set", "eval-every=5"], "--set: the comparison evaluates every round"),
        (["--set", "learning-rate=fast"], "--set learning-rate: expected float, got 'fast'"),
        (["--set", "fading=maybe"], "--set fading: expected true or false, got 'maybe'"),
        (["--set", "model=vgg"], "--set model: unknown model 'vgg'"),
        (["--set", "patience=0"], "--set patience: must be >= 1, got 0"),
    ],
)
def test_bad_input_is_one_line_with_exit_code_2(argv, message, capsys, tmp_path):
    try:
        code = main(["compare", "--results-dir", str(tmp_path), *argv])
    except SystemExit as exc:  # argparse's own errors
        code = exc.code
    err = capsys.readouterr().err
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "runs").exists()


def test_simulate_arguments_pass_the_keys_that_differ_from_the_defaults():
    config = resolve_run_config(
        {"scheme": "model-feel", "fading": True, "learning-rate": 0.1, "min-nodes": 4}
    )
    arguments = simulate_arguments(config, 4)
    assert arguments == ["simulate", "--clients", "4", "--scheme", "model-feel",
                         "--learning-rate", "0.1", "--fading"]  # fmt: skip
