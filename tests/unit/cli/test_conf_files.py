"""conf/: every experiment file resolves for feel simulate, feel compare and, flat, for flwr run."""

import tomllib

import pytest
from flwr.common.config import flatten_dict, fuse_dicts, parse_config_args
from support.paths import ROOT

from cli.compare.command import settings_from
from cli.config_file import compare_options, load, simulate_options
from cli.main import build_parser
from cli.simulate import run_config
from strategy import check_scheme
from task.config import resolve_run_config

FILES = sorted((ROOT / "conf").glob("*.toml"))
NAMES = [path.name for path in FILES]


def options(command, path, merge):
    args = build_parser().parse_args([command, "--config", str(path)])
    return merge(load(str(path)), args)[0]


def is_flat(path):
    return not any(isinstance(v, dict) for v in tomllib.loads(path.read_text()).values())


def test_conf_holds_the_paper_s_experiments_and_some_take_flwr_run():
    assert {"table2-iid.toml", "fig3-lr-sweep.toml", "gpu-iid.toml"} <= set(NAMES)
    assert any(is_flat(path) for path in FILES)


@pytest.mark.parametrize("path", FILES, ids=NAMES)
def test_feel_simulate_resolves_it(path, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = run_config(options("simulate", path, simulate_options))
    assert config["num-server-rounds"] >= 1


@pytest.mark.parametrize("path", FILES, ids=NAMES)
def test_feel_compare_resolves_every_run_of_it(path):
    settings = settings_from(options("compare", path, compare_options))  # checks every run
    assert settings.runs()


@pytest.mark.parametrize("path", [p for p in FILES if is_flat(p)], ids=lambda p: p.name)
def test_a_flat_file_is_a_run_config_that_flwr_run_and_the_server_app_accept(path):
    overrides = parse_config_args([str(path)])  # what `flwr run --run-config FILE` sends
    app = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["flwr"]["app"]["config"]
    # The SuperLink refuses a key the app does not declare; the ServerApp gets the fused config.
    run_config = fuse_dicts(flatten_dict(app), overrides, check_keys=True)
    check_scheme(resolve_run_config(run_config))  # the ServerApp's checks
    assert all(run_config[key] == value for key, value in overrides.items())


@pytest.mark.parametrize("path", FILES, ids=NAMES)
def test_its_header_says_what_it_reproduces_and_the_exact_commands(path):
    header = path.read_text().split("\n\n")[0]
    assert all(line.startswith("#") for line in header.splitlines())
    assert f"feel simulate --config conf/{path.name}" in header
    assert f"feel compare --config conf/{path.name}" in header
    flwr = f"flwr run . --stream --run-config conf/{path.name}"
    assert (flwr in header) == is_flat(path)


def test_the_readme_lists_every_experiment():
    readme = (ROOT / "README.md").read_text()
    assert all(f"conf/{name}" in readme for name in NAMES)
