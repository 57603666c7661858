"""A SuperNode's node config: device profile, checks naming the key, `feel deploy-local` specs."""

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
from fake_grid import LocalGrid
from flwr.app import ConfigRecord, Message, RecordDict

from cli.deploy_local import node_configs
from cli.errors import UsageError
from cli.main import main
from client.app import app as client_app
from client.local import Node, device
from server.app import run
from task.config import resolve_run_config
from task.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent

RUN = resolve_run_config({"device": "cpu"})


def _send(grid, content):
    (reply,) = grid.send_and_receive([Message(RecordDict(content), 1000, "query.profile")])
    return reply.content["profile"]


def _profile(node_config):
    grid = LocalGrid(client_app, 1)
    grid.contexts[1000].node_config.update(node_config)
    return _send(grid, {"config": ConfigRecord({"server-round": 1})})


def test_node_config_device_profile_is_what_the_query_reports():
    profile = _profile(
        {"cpu-hz": 2.5e9, "cycles-per-sample": 4e6, "path-gain-db": -95.0, "dataset": "digits"}
    )
    assert profile["cpu-hz"] == 2.5e9 and profile["cycles-per-sample"] == 4e6
    assert profile["path-gain"] == pytest.approx(10 ** (-9.5))
    gpu = _profile({"scenario": "gpu", "latency-slope-s": 1e-3, "distance-m": 80.0})
    assert gpu["latency-slope-s"] == 1e-3 and gpu["scenario"] == "gpu"


def test_profile_on_start_reports_the_measured_compute_profile_once():
    grid = LocalGrid(client_app, 1, {"device": "cpu", "max-batch": 16})
    context = grid.contexts[1000]
    context.node_config.update({"profile-on-start": True, "cpu-hz": 2.0e9})
    derived = Node.from_context({"partition-id": 0, "num-partitions": 1}, RUN)
    query = {"config": ConfigRecord({"server-round": 1})}
    first = _send(grid, query)
    assert first["cpu-hz"] == 2.0e9 and first["update-cycles"] > 0
    assert first["cycles-per-sample"] != device(derived).compute.cycles_per_sample
    context.state["profile"]["cycles-per-sample"] = 123.0  # kept, not measured again
    assert _send(grid, query)["cycles-per-sample"] == 123.0


def test_later_queries_reuse_the_profile_without_torch():
    """A deployment runs each message in a fresh ClientApp process: after the first query the
    profile comes from ``context.state``, with only the round's fading drawn anew."""
    grid = LocalGrid(client_app, 1)
    first = dict(_send(grid, {"config": ConfigRecord({"server-round": 1})}))
    second = dict(_send(grid, {"config": ConfigRecord({"server-round": 2})}))
    changed = {k for k in first if first[k] != second[k]}
    assert changed == {"fading-up", "fading-down"}
    code = f"""
import json, sys
from flwr.app import ConfigRecord, Message, RecordDict
from fake_grid import LocalGrid
from client.app import PROFILE_STATE, app
grid = LocalGrid(app, 1)
grid.contexts[1000].state[PROFILE_STATE] = ConfigRecord({first!r})
content = RecordDict({{"config": ConfigRecord({{"server-round": 2}})}})
(reply,) = grid.send_and_receive([Message(content, 1000, "query.profile")])
print(json.dumps([dict(reply.content["profile"]), "torch" in sys.modules]))
"""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "tests")])}
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    )
    reply, torch_imported = json.loads(done.stdout)
    assert reply == second and not torch_imported


@pytest.mark.parametrize(
    ("node_config", "message"),
    [
        ({"cpu-ghz": 2.0}, "node-config.cpu-ghz: unknown key; known: partition-id, "),
        ({"partition-id": "0"}, "node-config.partition-id: expected an integer, got '0'"),
        ({"num-partitions": 1.5}, "node-config.num-partitions: expected an integer, got 1.5"),
        ({"partition-id": 4}, "node-config.partition-id: must be in [0, 2), got 4"),
        ({"dataset": "mnist-typo"}, "node-config.dataset: unknown dataset 'mnist-typo'"),
        ({"max-batch": 0}, "node-config.max-batch: must be >= 1, got 0"),
        ({"profile-on-start": 1}, "node-config.profile-on-start: expected true or false, got 1"),
    ],
)
def test_bad_node_config_names_the_key(node_config, message):
    with pytest.raises(ConfigError) as error:
        Node.from_context({"partition-id": 0, "num-partitions": 2, **node_config}, RUN)
    assert str(error.value).startswith(message)


def test_bad_node_config_is_named_in_the_run_log(tmp_path, caplog):
    config = resolve_run_config(
        {"num-server-rounds": 1, "min-nodes": 3, "device": "cpu", "results-dir": str(tmp_path)}
    )
    grid = LocalGrid(client_app, 3, config)
    grid.contexts[1002].node_config["cpu-hz"] = -1.0
    with caplog.at_level(logging.WARNING, logger="flwr"):
        run(grid, config, run_id=1)
    assert "node-config.cpu-hz: must be > 0, got -1.0" in caplog.text
    rows = (tmp_path / "rounds.jsonl").read_text()
    assert '"participants": [0, 1]' in rows


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
