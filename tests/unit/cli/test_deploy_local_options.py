"""`feel deploy-local`: ``--node-config`` specs and option checks (nothing is started)."""

import pytest

from cli.deploy_local import node_configs
from cli.errors import UsageError
from cli.main import main
from task.config import resolve_run_config

RUN = resolve_run_config({"device": "cpu"})


def test_deploy_local_node_configs_add_the_specs(tmp_path):
    (tmp_path / "node.toml").write_text('data-dir = "/data"\n')
    configs = node_configs(["2:cpu-hz=2.1e9 distance-m=50", f"0:{tmp_path / 'node.toml'}"], 3, RUN)
    assert configs[1] == {"partition-id": 1, "num-partitions": 3}
    assert configs[2] == {"partition-id": 2, "num-partitions": 3, "cpu-hz": 2.1e9,
                          "distance-m": 50}  # fmt: skip
    assert configs[0]["data-dir"] == "/data"


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("3:cpu-hz=1e9", "--node-config: expected INDEX:'key=value ...' with INDEX < 3"),
        ("cpu-hz=1e9", "--node-config: expected INDEX:"),
        ("1:nothing", "--node-config: no key=value pairs in '1:nothing'"),
        ("1:cpu-hz=fast", "--node-config: '1:cpu-hz=fast': The provided configuration"),
        ("1:cpu-hz=0.0", "--node-config: node 1: node-config.cpu-hz: must be > 0, got 0.0"),
        ("0:cpu-ghz=1.0", "--node-config: node 0: node-config.cpu-ghz: unknown key"),
        ("0:/no/such.toml", "--node-config: '0:/no/such.toml': [Errno 2] No such file"),
    ],
)
def test_deploy_local_bad_specs_are_usage_errors(spec, message):
    with pytest.raises(UsageError) as error:
        node_configs([spec], 3, RUN)
    assert str(error.value).startswith(message)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--nodes", "0"], "--nodes: must be >= 1, got 0"),
        (["--nodes", "400", "--min-batch", "16"], "--min-batch: 16 exceeds the 3 examples"),
    ],
)
def test_deploy_local_bad_options_exit_2_naming_the_option(options, message, tmp_path, capsys):
    assert main(["deploy-local", *options, "--results-dir", str(tmp_path)]) == 2
    assert f"feel deploy-local: error: {message}" in capsys.readouterr().err
