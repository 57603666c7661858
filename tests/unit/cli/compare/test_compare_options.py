"""``feel compare``: option checks, run-config overrides and the arguments of ``feel simulate``."""

import pytest

from cli.compare.command import settings_from
from cli.compare.runner import run_config, simulate_arguments
from cli.main import build_parser, main
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
        (["--set", "gradient-bits=8"], "--set: 'gradient-bits' is set by the grid"),
        (["--gradient-bits", "32", "0"], "--gradient-bits: must be between 1 and 32, got 0"),
        (["--gradient-bits", "33"], "--gradient-bits: must be between 1 and 32, got 33"),
        (["--set", "eval-every=5"], "--set: eval-every skips rounds by count; use eval-every-s"),
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


def test_gradient_bits_are_a_grid_axis_naming_the_cells(tmp_path):
    argv = ["compare", "--clients", "4", "--partitions", "iid", "--gradient-bits", "32", "8", "1"]
    settings = settings_from(build_parser().parse_args(argv))
    assert settings.gradient_bits == (32, 8, 1)
    assert settings.cells() == [(4, "iid", 32), (4, "iid", 8), (4, "iid", 1)]
    runs = [r for r in settings.runs() if r.name == "proposed" and r.seed == 0]
    assert [r.cell for r in runs[:3]] == ["K4-iid", "K4-iid-b8", "K4-iid-b1"]
    configs = [run_config(r, settings, tmp_path) for r in runs[:3]]
    assert [c["gradient-bits"] for c in configs] == [32, 8, 1]
    assert configs[1]["results-dir"].endswith("runs/K4-iid-b8/seed0/proposed")


def test_each_run_of_the_grid_logs_to_its_own_tensorboard_folder(tmp_path):
    argv = ["compare", "--quick", "--set", f"tensorboard={tmp_path / 'tb'}"]
    settings = settings_from(build_parser().parse_args(argv))
    configs = [run_config(r, settings, tmp_path) for r in settings.runs()]
    folders = [c["tensorboard"] for c in configs]
    assert len(set(folders)) == len(configs) > 1
    assert folders[0] == str(
        tmp_path / "tb" / settings.runs()[0].directory(tmp_path).relative_to(tmp_path)
    )


def test_gpu_scenario_compares_proposed_with_the_gpu_baselines_on_gpus(tmp_path):
    settings = settings_from(build_parser().parse_args(["compare", "--quick", "--scenario", "gpu"]))
    assert settings.schemes == ("proposed", "online", "full", "random")  # Sec. VI-D, Figs. 4-5
    configs = [run_config(r, settings, tmp_path) for r in settings.runs()]
    assert {c["scenario"] for c in configs} == {"gpu"}
    cpu = settings_from(build_parser().parse_args(["compare", "--quick"]))
    assert "individual" in cpu.schemes and cpu.scenario == "cpu"
    chosen = ["compare", "--scenario", "gpu", "--schemes", "proposed,model-feel"]
    assert settings_from(build_parser().parse_args(chosen)).schemes == ("proposed", "model-feel")


def test_the_scenario_is_the_grid_s_option_not_a_set_key(capsys):
    assert main(["compare", "--set", "scenario=gpu"]) == 2
    assert "--set: 'scenario' is set by the grid" in capsys.readouterr().err
