"""``feel deploy-local`` end to end: a SuperLink and three SuperNodes on 127.0.0.1.

Deployment starts a ClientApp process per message, so each round takes tens of seconds:
the two runs are the slow tests; the refused SuperNode needs no run.
"""

import json
import signal
import subprocess
import sys
import threading
import time
import tomllib
from pathlib import Path

import pytest
from support.paths import ROOT
from support.processes import processes_mentioning

from cli.main import build_parser
from cli.process.deployment import LocalDeployment
from cli.process.orphans import processes_of
from cli.simulate import resolve_options, run_app

NODES = 3
# Long enough for a busy 2-core machine; a crashed node is reported by the SuperLink once its
# heartbeat expires (at most 60 s), usually before this.
ROUND_TIMEOUT_S = "60"

pytestmark = pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="needs /proc")


def rows_of(directory):
    return [json.loads(line) for line in (directory / "rounds.jsonl").read_text().splitlines()]


def node_configs(count):
    return [{"partition-id": i, "num-partitions": count} for i in range(count)]


def crash_and_restart_after_round_one(deployment, directory, node):
    """SIGKILL SuperNode ``node`` (its whole tree) once round 1 is logged; start it again."""
    rounds = directory / "rounds.jsonl"
    while not (rounds.exists() and rounds.read_text().count("\n") >= 1):
        time.sleep(0.1)
    deployment.kill_node(node, signal.SIGKILL)
    deployment.start_node(node)


@pytest.mark.slow
def test_crashed_supernode_is_left_out_then_takes_part_again(tmp_path):
    args = build_parser().parse_args(
        ["deploy-local", "--rounds", "3", "--round-timeout-s", ROUND_TIMEOUT_S,
         "--device", "cpu", "--results-dir", str(tmp_path)]
    )  # fmt: skip
    config = resolve_options(args, NODES)
    deployment = LocalDeployment(tmp_path, node_configs(NODES))
    chaos = threading.Thread(
        target=crash_and_restart_after_round_one, args=(deployment, tmp_path, 2), daemon=True
    )
    chaos.start()
    assert run_app("feel deploy-local", config, lambda directory: deployment) == 0
    rows = rows_of(tmp_path)
    assert [r["participants"] for r in rows] == [[0, 1, 2], [0, 1], [0, 1, 2]]
    # Round 2 went on without the crashed device and says why (no reply, or the SuperLink's
    # Node Unavailable once its heartbeat expired); in round 3 it took part again.
    assert list(rows[1]["excluded"]) == ["2"]
    assert rows[2]["excluded"] == {}
    assert json.loads((tmp_path / "summary.json").read_text())["rounds"] == 3
    assert not processes_of(str(deployment.home))
    assert all(n.process.poll() is not None for n in deployment.nodes)


@pytest.mark.slow
def test_secure_run_with_tls_and_supernode_authentication(tmp_path):
    command = [
        sys.executable, "-m", "cli.main", "deploy-local", "--secure", "--nodes", str(NODES),
        "--rounds", "2", "--round-timeout-s", ROUND_TIMEOUT_S, "--device", "cpu",
        "--results-dir", str(tmp_path), "--node-config", "1:cpu-hz=2.5e9 path-gain-db=-90.0",
    ]  # fmt: skip
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "done: test accuracy" in done.stdout
    rows = rows_of(tmp_path)
    assert [r["participants"] for r in rows] == [[0, 1, 2], [0, 1, 2]]
    assert (tmp_path / "node-1.toml").read_text().endswith("cpu-hz = 2500000000.0\n"
                                                          "path-gain-db = -90.0\n")  # fmt: skip
    assert (tmp_path / "summary.json").is_file()
    # Each registered node id is pinned to its partition, and the run used that map.
    pins = json.loads((tmp_path / "node-partitions.json").read_text())
    assert sorted(pins.values()) == [0, 1, 2] and all(n.isdigit() for n in pins)
    config = tomllib.loads((tmp_path / "run_config.toml").read_text())
    assert config["node-partitions"] == str(tmp_path / "node-partitions.json")
    assert not processes_mentioning(str(tmp_path))


@pytest.mark.slow
def test_unregistered_supernode_is_refused_and_interrupt_stops_all(tmp_path):
    deployment = LocalDeployment(tmp_path, node_configs(1), secure=True)
    with pytest.raises(KeyboardInterrupt), deployment:  # Ctrl-C while it runs
        assert deployment.online_nodes() == 1
        stranger = deployment.add_node({"partition-id": 0, "num-partitions": 1})
        assert deployment.start_node(stranger.index).wait(timeout=120) != 0
        assert "Failed to activate SuperNode" in stranger.log_file.read_text()
        assert deployment.online_nodes() == 1
        raise KeyboardInterrupt
    assert deployment.process.poll() is not None
    assert all(n.process.poll() is not None for n in deployment.nodes)
    assert not processes_of(str(deployment.home)) and not deployment.home.exists()
