"""``--config FILE.toml``: precedence, one-line errors naming file and key, the kept config."""

import tomllib

import pytest

from cli.compare.command import GRID_KEYS, settings_from
from cli.config_file import RUN_AXES, TABLES, compare_options, load, simulate_options
from cli.main import build_parser, main
from cli.simulate import _prepare_results_dir, run_config
from task.config import DEFAULTS, KEYS


def write(tmp_path, text, name="exp.toml"):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def merged(command, argv, merge):
    args = build_parser().parse_args([command, *argv])
    return merge(load(args.config), args)[0]


def simulate_config(path, *argv):
    return run_config(merged("simulate", ["--config", path, *argv], simulate_options))


def compare_settings(path, *argv):
    return settings_from(merged("compare", ["--config", path, *argv], compare_options))


def one_line_error(argv, capsys):
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse's own errors
        code = exc.code
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1, err
    return err


EXPERIMENT = """
num-server-rounds = 7
learning-rate = 0.2
fading = true
partition = "shards"
scheme = "proposed"

[simulate]
clients = 4
name = "from-file"
"""


def test_simulate_takes_the_file_s_keys_and_table(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = simulate_config(write(tmp_path, EXPERIMENT))
    assert config["num-server-rounds"] == 7 and config["learning-rate"] == 0.2
    assert config["fading"] is True and config["partition"] == "shards"
    assert config["min-nodes"] == 4
    assert config["results-dir"] == str(tmp_path / "results" / "from-file")
    assert config["model"] == DEFAULTS["model"]


def test_the_command_line_overrides_the_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = write(tmp_path, EXPERIMENT)
    argv = ["--rounds", "3", "--no-fading", "--clients", "2", "--name", "cli", "--partition", "iid"]
    config = simulate_config(path, *argv)
    assert config["num-server-rounds"] == 3 and config["fading"] is False
    assert config["min-nodes"] == 2 and config["partition"] == "iid"
    assert config["results-dir"] == str(tmp_path / "results" / "cli")
    assert config["learning-rate"] == 0.2  # not given on the command line: the file's


def test_the_results_dir_keeps_the_resolved_config_with_the_file_s_values(tmp_path):
    path = write(tmp_path, f'{EXPERIMENT.split("[simulate]")[0]}results-dir = "{tmp_path}/run"')
    config = simulate_config(path, "--rounds", "2", "--clients", "3")
    directory = _prepare_results_dir(config)
    kept = tomllib.loads((directory / "run_config.toml").read_text())
    assert kept == config and set(kept) == set(KEYS)
    assert kept["learning-rate"] == 0.2 and kept["num-server-rounds"] == 2
    assert kept["min-nodes"] == 3 and kept["results-dir"] == str(tmp_path / "run")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("colour = 'red'", "colour: unknown run-config key"),
        (
            "num-server-round = 3",
            "num-server-round: unknown run-config key; did you mean 'num-server-rounds'?",
        ),
        ("clients = 4", "clients: unknown run-config key; clients goes in [simulate] or [compare]"),
        ("min-nodes = 4", "min-nodes: not set in a file"),
        ("[feel]\nclients = 4", "feel: unknown table; choose from simulate, compare"),
        ("[simulate]\nray-address = 'auto'", "simulate.ray-address: unknown option of [simulate]"),
        ("[compare]\njobs = 2", "compare.jobs: unknown option of [compare]"),
        ("learning-rate = 'fast'", "learning-rate: expected float, got 'fast'"),
        ("fading = 'yes'", "fading: expected bool, got 'yes'"),
        ("[simulate]\nclients = 2.5", "simulate.clients: expected int, got 2.5"),
        ("[compare]\nclients = [6, 'twelve']", "compare.clients[1]: expected int, got 'twelve'"),
        ("num-server-rounds = 0", "num-server-rounds: must be >= 1, got 0"),
        ("model = 'vgg16'", "model: unknown model 'vgg16'"),
        ("scheme = 'fastest'", "scheme: policy: unknown policy 'fastest'"),
        ("min-batch = 200", "min-batch: 200 exceeds max-batch 128"),
        ("[simulate]\nclients = 0", "simulate.clients: must be >= 1, got 0"),
    ],
)
def test_a_bad_key_or_value_is_one_line_naming_file_and_key(text, message, tmp_path, capsys):
    path = write(tmp_path, text)
    out = tmp_path / "out"
    err = one_line_error(["simulate", "--config", path, "--results-dir", str(out)], capsys)
    assert err.startswith(f"feel simulate: error: {path}: ") and message in err
    assert not out.exists()


@pytest.mark.parametrize(
    ("key", "value", "option"),
    [("num-server-rounds", "0", "--rounds 0"), ("model", "'vgg16'", "--model vgg16")],
)
def test_a_bad_value_reads_as_on_the_command_line(key, value, option, tmp_path, capsys):
    path = write(tmp_path, f"{key} = {value}")
    from_cli = one_line_error(["simulate", *option.split()], capsys)
    message = from_cli.removeprefix(f"feel simulate: error: {option.split()[0]}: ")
    from_file = one_line_error(["simulate", "--config", path], capsys)
    assert from_file == f"feel simulate: error: {path}: {key}: {message}"


def test_a_missing_or_malformed_file_is_one_line(tmp_path, capsys):
    missing = str(tmp_path / "none.toml")
    err = one_line_error(["simulate", "--config", missing], capsys)
    assert err == f"feel simulate: error: --config: no such file {missing!r}"
    path = write(tmp_path, 'partition = "iid"\nrounds = \n')
    err = one_line_error(["compare", "--config", path], capsys)
    assert err.startswith(f"feel compare: error: {path}: not valid TOML") and "line 2" in err


def test_resume_refuses_a_file_s_keys_naming_them(tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    (run / "run_config.toml").write_text("")
    argv = ["simulate", "--resume", str(run), "--config", write(tmp_path, "seed = 3")]
    assert one_line_error(argv, capsys).endswith(
        "exp.toml: seed: cannot be changed when resuming a run (--resume)"
    )


COMPARE = """
partition = "shards"
scheme = "proposed"
learning-rate = 0.2
num-server-rounds = 50

[simulate]
clients = 12

[compare]
repeats = 3
sweep-learning-rates = [0.1]
target-accuracy = 0.8
"""


def test_compare_takes_its_table_and_the_file_s_run(tmp_path):
    settings = compare_settings(write(tmp_path, COMPARE))
    assert settings.partitions == ("shards",) and settings.schemes == ("proposed",)
    assert settings.clients == (12,) and settings.rounds == 50
    assert settings.time_budget_s == 0  # rounds without a budget, as on the command line
    assert settings.repeats == 3 and settings.sweep_learning_rates == (0.1,)
    assert settings.target_accuracy == 0.8 and settings.run_config == {"learning-rate": 0.2}


def test_compare_s_table_then_the_command_line_override_the_run(tmp_path):
    path = write(tmp_path, COMPARE + 'clients = [6]\npartitions = ["iid", "shards"]\n')
    settings = compare_settings(path)
    assert settings.clients == (6,) and settings.partitions == ("iid", "shards")
    argv = ["--clients", "4", "--partitions", "iid", "--repeats", "1", "--set", "learning-rate=0.3"]
    settings = compare_settings(path, *argv)
    assert settings.clients == (4,) and settings.partitions == ("iid",)
    assert settings.repeats == 1 and settings.run_config == {"learning-rate": 0.3}


def test_compare_takes_a_file_s_results_dir(tmp_path):
    args = merged("compare", ["--config", write(tmp_path, COMPARE + 'results-dir = "out"')],
                  compare_options)  # fmt: skip
    assert args.results_dir == "out" and args.config.endswith("exp.toml")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[compare]\nrepeats = 0", "compare.repeats: must be >= 1, got 0"),
        ("partition = 'zipf'", "partition: unknown partition 'zipf'"),
        ("seed = -1", "seed: must be >= 0, got -1"),
        ("time-budget-s = -1.0", "time-budget-s: must be >= 0, got -1"),
        ("patience = 0", "patience: must be >= 1, got 0"),
        ("scheme = 'fastest'", "scheme: policy: unknown policy 'fastest'"),
        ("eval-every = 5", "eval-every: eval-every skips rounds by count; use eval-every-s"),
        ("[compare]\nschemes = ['proposed', 'nope']", "compare.schemes: policy: unknown policy"),
    ],
)
def test_compare_s_bad_file_values_name_file_and_key(text, message, tmp_path, capsys):
    path = write(tmp_path, text)
    argv = ["compare", "--config", path, "--results-dir", str(tmp_path / "out")]
    err = one_line_error(argv, capsys)
    assert err.startswith(f"feel compare: error: {path}: ") and message in err
    assert not (tmp_path / "out").exists()


def test_compare_s_file_axes_are_the_keys_its_grid_sets():
    derived = {name for name in GRID_KEYS if KEYS[name].derived}
    assert set(RUN_AXES) == set(GRID_KEYS) - derived
    assert set(RUN_AXES.values()) <= set(TABLES["compare"])


@pytest.mark.parametrize("command", sorted(TABLES))
def test_every_table_option_is_an_option_of_its_command_left_unset(command):
    args = vars(build_parser().parse_args([command]))
    for name in TABLES[command]:
        assert args[name.replace("-", "_")] is None  # what the file fills
