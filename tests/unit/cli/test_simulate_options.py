"""``feel simulate`` input checks, run config, app directory and progress (no Flower run)."""

import tomllib
from pathlib import Path

import pytest

from cli.main import build_parser, main
from cli.process.app_dir import APP_PACKAGES, build_app_dir, project_dir, pyproject_text
from cli.process.superlink import free_ports, run_id_from_output
from cli.progress import RoundsTail, round_line
from cli.simulate import run_config
from task.config import DEFAULTS


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--scheme", "fastest"], "--scheme: policy: unknown policy 'fastest'"),
        (["--scheme", "nowhere.mod:Policy"], "--scheme: policy: cannot import"),
        (["--model", "vgg16"], "--model: unknown model 'vgg16'"),
        (["--dataset", "svhn"], "--dataset: unknown dataset 'svhn'"),
        (["--dataset", "mnist"], "--data-dir: required for dataset 'mnist'"),
        (["--partition", "sorted"], "--partition: unknown partition 'sorted'"),
        (["--rounds", "0"], "--rounds: must be >= 1, got 0"),
        (["--clients", "0"], "--clients: must be >= 1, got 0"),
        (["--learning-rate", "0"], "--learning-rate: must be > 0"),
        (["--fleet-file", "/no/such/fleet.toml"], "--fleet-file: no such file"),
    ],
)
def test_bad_options_exit_2_naming_option_and_value(argv, message, capsys):
    assert main(["simulate", *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("feel simulate: error: ") and message in err
    assert len(err.splitlines()) == 1


def test_options_mirror_the_run_config(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    argv = "simulate --rounds 3 --clients 4 --fading --data-dir data --learning-rate 0.2 --name try"
    args = build_parser().parse_args(argv.split())
    config = run_config(args)
    assert set(config) == set(DEFAULTS)
    assert config["num-server-rounds"] == 3 and config["min-nodes"] == 4
    assert config["fading"] is True and config["learning-rate"] == 0.2
    assert config["data-dir"] == str(tmp_path / "data")
    assert config["results-dir"] == str(tmp_path / "results" / "try")
    assert config["scheme"] == "proposed" and config["model"] == DEFAULTS["model"]


def test_source_checkout_is_the_app_dir():
    root = project_dir()
    assert root is not None and (root / "pyproject.toml").is_file()


def test_built_app_dir_is_a_valid_flower_app(tmp_path):
    from flwr.cli.build import build_fab_from_disk

    app = build_app_dir(tmp_path / "app")
    assert all((app / name / "__init__.py").is_file() for name in APP_PACKAGES)
    flwr = tomllib.loads(pyproject_text())["tool"]["flwr"]["app"]
    assert flwr["config"] == DEFAULTS and flwr["components"]["serverapp"] == "server.app:app"
    assert len(build_fab_from_disk(app)) > 0


def test_rounds_tail_returns_only_complete_new_rows(tmp_path):
    path = tmp_path / "rounds.jsonl"
    tail = RoundsTail(path)
    assert tail.poll() == []
    path.write_text('{"round": 1}\n{"round": 2')
    assert tail.poll() == [{"round": 1}]
    with path.open("a") as stream:
        stream.write("}\n")
    assert tail.poll() == [{"round": 2}]
    assert tail.poll() == []


def test_round_line_shows_round_time_and_accuracy():
    row = {"round": 3, "sim_time_s": 1.25, "test_accuracy": 0.9123, "test_loss": 0.3,
           "global_batch": 200}  # fmt: skip
    line = round_line(row, 40)
    assert line.startswith("round  3/40") and "1.25 s" in line and "91.23%" in line
    skipped = round_line({**row, "test_accuracy": None, "test_loss": None}, 40)
    assert "not evaluated" in skipped and "%" not in skipped and len(skipped) == len(line)


def test_free_ports_are_distinct_and_run_id_is_parsed():
    first, second = free_ports(2)
    assert first != second
    assert run_id_from_output("x\nSuccessfully started run 123456\n") == 123456
    assert run_id_from_output("Failed to start run") is None


def test_app_packages_exist_in_checkout():
    root = Path(project_dir())
    assert all((root / name).is_dir() for name in APP_PACKAGES)


def test_failed_run_shows_the_exception_line(tmp_path):
    from cli.simulate import _error_lines

    log = tmp_path / "flower.log"
    log.write_text(
        'INFO: starting\nTraceback (most recent call last):\n  File "x.py", line 1\n'
        "    raise ConfigError(...)\ntask.errors.ConfigError: data-dir: required\nINFO: done\n"
    )
    assert _error_lines(log) == ["task.errors.ConfigError: data-dir: required"]
    log.write_text("a\nb\n")
    assert _error_lines(log) == ["a", "b"]
