"""``feel simulate --ray-address`` on a two-node Ray cluster started on this machine.

The cluster is two ``ray start --block`` processes with their own ``RAY_TMPDIR`` and ports,
torn down by process tree (never ``ray stop``, which would stop every Ray on the host).
"""

import os
import re
import shutil
import subprocess
import tempfile
import time

import pytest
from support.processes import processes_mentioning
from support.simulate import rows, simulate

from cli.process.superlink import executable, free_ports, kill_trees
from server.results import read_rounds

# The ports of a node besides the head's GCS port, by `ray start` option.
NODE_PORTS = (
    "--node-manager-port",
    "--object-manager-port",
    "--dashboard-agent-listen-port",
    "--dashboard-agent-grpc-port",
    "--runtime-env-agent-port",
    "--metrics-export-port",
)
HEAD_PORTS = ("--ray-client-server-port", "--dashboard-port")
NODES_TIMEOUT_S = 90.0
RUN = ["--clients", "3", "--rounds", "3", "--cpus-per-client", "1", "--seed", "3"]


def start_node(env, log, *options):
    """Start ``ray start --num-cpus=1 --block`` with ``options`` and free ports of its own."""
    names = NODE_PORTS + (HEAD_PORTS if "--head" in options else ())
    command = [executable("ray"), "start", "--num-cpus=1", "--block", *options]
    command += [f"{name}={port}" for name, port in zip(names, free_ports(len(names)), strict=True)]
    return subprocess.Popen(
        command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )


def active_nodes(address, env):
    """Return the number of active nodes that ``ray status`` lists (0 if it fails)."""
    done = subprocess.run(
        [executable("ray"), "status", "--address", address],
        env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    active = done.stdout.partition("Active:")[2].partition("Pending:")[0]
    return len(re.findall(r"\bnode_[0-9a-f]+", active)) if done.returncode == 0 else 0


@pytest.fixture
def ray_cluster(tmp_path):
    """A head and a worker node (one CPU each): yields the head's address and RAY_TMPDIR."""
    tmpdir = tempfile.mkdtemp(prefix="fr", dir="/tmp")  # Ray's socket paths: under 107 bytes
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    env.update({"RAY_TMPDIR": tmpdir, "RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO": "0"})
    nodes = []
    try:
        with (tmp_path / "ray.log").open("w") as log:
            (port,) = free_ports(1)
            address = f"127.0.0.1:{port}"
            nodes.append(
                start_node(env, log, "--head", f"--port={port}", "--include-dashboard=false")
            )
            nodes.append(start_node(env, log, f"--address={address}"))
            deadline = time.monotonic() + NODES_TIMEOUT_S
            while active_nodes(address, env) < 2:
                assert time.monotonic() < deadline, (tmp_path / "ray.log").read_text()[-3000:]
                assert all(node.poll() is None for node in nodes), (
                    tmp_path / "ray.log"
                ).read_text()
                time.sleep(1.0)
            yield address, tmpdir
    finally:
        kill_trees(nodes)
        shutil.rmtree(tmpdir, ignore_errors=True)
        assert processes_mentioning(tmpdir) == {}


@pytest.mark.slow
@pytest.mark.skipif(not os.path.exists("/proc/self/environ"), reason="needs /proc")
def test_a_run_on_two_ray_nodes_uses_both_and_gives_the_rounds_of_a_private_ray(
    ray_cluster, tmp_path, monkeypatch
):
    address, tmpdir = ray_cluster
    on_cluster, private = tmp_path / "cluster", tmp_path / "private"
    done = simulate(tmpdir, "--ray-address", address, "--results-dir", str(on_cluster), *RUN)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "on the Ray cluster at " in done.stdout
    cluster_places = {p for row in read_rounds(on_cluster) for p in row["places"].values()}
    assert len(cluster_places) == 2, cluster_places  # both nodes' ids
    # Without an address the run keeps a private Ray, though its TMPDIR records the cluster
    # (tmpdir/ray/ray_current_cluster), which an address-less ray.init() would attach to.
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    done = simulate(tmpdir, "--results-dir", str(private), *RUN)
    assert done.returncode == 0, done.stdout + done.stderr
    private_places = {p for row in read_rounds(private) for p in row["places"].values()}
    assert len(private_places) == 1 and not private_places & cluster_places
    assert rows(on_cluster) == rows(private)
    print(f"cluster nodes {sorted(cluster_places)}, private node {sorted(private_places)}")
