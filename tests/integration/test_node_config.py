"""A SuperNode's node config in process: the profile queries report, a bad one in the run log."""

import json
import logging
import os
import subprocess
import sys

import pytest
from flwr.app import ConfigRecord, Message, RecordDict
from support.fake_grid import LocalGrid
from support.paths import ROOT

from client.app import app as client_app
from client.local import Node, device
from server.app import run
from task.config import resolve_run_config

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


def test_later_queries_reuse_the_profile_without_torch_or_scipy():
    """A deployment runs each message in a fresh ClientApp process: after the first query the
    profile comes from ``context.state``, with only the round's fading drawn anew, and neither
    torch nor scipy's solvers are imported for it."""
    grid = LocalGrid(client_app, 1)
    first = dict(_send(grid, {"config": ConfigRecord({"server-round": 1})}))
    second = dict(_send(grid, {"config": ConfigRecord({"server-round": 2})}))
    changed = {k for k in first if first[k] != second[k]}
    assert changed == {"fading-up", "fading-down"}
    code = f"""
import json, sys
from flwr.app import ConfigRecord, Message, RecordDict
from support.fake_grid import LocalGrid
from client.app import PROFILE_STATE, app
grid = LocalGrid(app, 1)
grid.contexts[1000].state[PROFILE_STATE] = ConfigRecord({first!r})
content = RecordDict({{"config": ConfigRecord({{"server-round": 2}})}})
(reply,) = grid.send_and_receive([Message(content, 1000, "query.profile")])
heavy = [name for name in ("torch", "scipy.optimize", "scipy.special") if name in sys.modules]
print(json.dumps([dict(reply.content["profile"]), heavy]))
"""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "tests")])}
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    )
    reply, heavy = json.loads(done.stdout)
    assert reply == second and heavy == []


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
