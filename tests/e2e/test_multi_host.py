"""Deployment across separate hosts: the SuperLink and each SuperNode in a network stack of its own.

Every host is a network namespace on one bridged /24 (:mod:`support.netns`); the SuperNodes
dial the SuperLink's address on it over TLS, with a server certificate for that address
(and 127.0.0.1, where the SuperLink's own SuperExec dials it), and authenticate with
registered keys, as the README's multi-host section sets them up. Cutting a SuperNode's
link mid-run shows what a lost device does to the run; the refused SuperNodes show what
the certificate and the key registry keep out. Needs root and iproute2.
"""

import json
import subprocess
import sys
import threading
import time

import pytest
from support import netns
from support.netns import Network

from cli.main import build_parser
from cli.process.deployment import LocalDeployment
from cli.process.orphans import processes_of
from cli.simulate import resolve_options, run_app

NODES = 3
CUT = 2  # the SuperNode (and partition) whose link is cut
# Cut after round 1, the device is left out of round 2 (and 3). It is back at the SuperLink
# at its first heartbeat after the link returns, in time for round 4 or 5.
ROUNDS = 5
# Healthy SuperNodes answered within this at load averages up to 7 on the 2-core machine;
# the cut one never does, so its round goes on without it after this long.
ROUND_TIMEOUT_S = "40"
CHAOS_TIMEOUT_S = 400.0
# A refused SuperNode exits with status 1; its log names Flower's exit code.
REFUSED_STATUS = 1
REFUSED_LOG = "Exit Code: 305"  # the SuperNode could not connect to the SuperLink


@pytest.fixture
def network():
    """Namespaces for the SuperLink, the SuperNodes and a stranger; deleted afterwards."""
    if reason := netns.unavailable():
        pytest.skip(reason)
    hosts = ["superlink", *(f"node-{i}" for i in range(NODES)), "stranger"]
    with Network(hosts) as network:
        yield network
    assert not network.left()


def deployment_on(network, directory, nodes):
    """A secure deployment: the SuperLink on its host, SuperNode ``i`` on host ``node-i``."""
    link = LocalDeployment(
        directory,
        [],
        secure=True,
        host=network.addresses["superlink"],
        prefix=network.exec("superlink"),
    )
    for i in range(nodes):
        link.add_node({"partition-id": i, "num-partitions": nodes}, network.exec(f"node-{i}"))
    return link


def rows_of(directory):
    path = directory / "rounds.jsonl"
    lines = path.read_text().splitlines() if path.exists() else []
    return [json.loads(line) for line in lines]


def wait_for_row(directory, test, deadline):
    """Return the first round row that passes ``test`` (None at ``deadline``)."""
    while time.monotonic() < deadline:
        if rows := [row for row in rows_of(directory) if test(row)]:
            return rows[0]
        time.sleep(0.2)
    return None


def cut_and_restore(network, directory, events, started):
    """Cut node ``CUT``'s link once round 1 is logged; restore it once a round excluded it.

    ``events`` gets each event, its seconds since ``started`` and the round whose row it
    followed; a step not seen before ``CHAOS_TIMEOUT_S`` ends it.
    """
    deadline = time.monotonic() + CHAOS_TIMEOUT_S
    host = f"node-{CUT}"

    def note(event, row):
        events.append({"event": event, "t_s": round(time.monotonic() - started, 1),
                       "round": row["round"]})  # fmt: skip

    if (row := wait_for_row(directory, lambda r: r["round"] == 1, deadline)) is None:
        return
    network.cut(host)
    note("link cut", row)
    if (left_out := wait_for_row(directory, lambda r: str(CUT) in r["excluded"], deadline)) is None:
        return
    note("excluded", left_out)
    network.restore(host)
    note("link restored", left_out)

    def back(r):
        return r["round"] > left_out["round"] and CUT in r["participants"]

    if (row := wait_for_row(directory, back, deadline)) is not None:
        note("took part again", row)


@pytest.mark.slow
def test_supernode_whose_link_is_cut_is_left_out_then_takes_part_again(network, tmp_path):
    args = build_parser().parse_args(
        ["deploy-local", "--rounds", str(ROUNDS), "--round-timeout-s", ROUND_TIMEOUT_S,
         "--device", "cpu", "--results-dir", str(tmp_path)]
    )  # fmt: skip
    config = resolve_options(args, NODES)
    deployment = deployment_on(network, tmp_path, NODES)
    events, started = [], time.monotonic()
    chaos = threading.Thread(
        target=cut_and_restore, args=(network, tmp_path, events, started), daemon=True
    )
    chaos.start()
    assert run_app("feel multi-host test", config, lambda directory: deployment) == 0
    chaos.join(timeout=5)
    print(json.dumps(events))  # the events' times, for the record
    (tmp_path / "events.json").write_text(json.dumps(events, indent=1))
    rows = rows_of(tmp_path)
    assert [e["event"] for e in events] == ["link cut", "excluded", "link restored",
                                            "took part again"], events  # fmt: skip
    assert rows[0]["participants"] == list(range(NODES))
    # The round after the cut went on with the others and says why the device is missing:
    # no reply within the grace after the others' quorum, or before the timeout (or Node
    # Unavailable, once the SuperLink saw its heartbeat expire). The device came back with
    # the same node ID and took part again.
    left_out = next(r for r in rows if str(CUT) in r["excluded"])
    assert left_out["participants"] == [i for i in range(NODES) if i != CUT]
    reason = left_out["excluded"][str(CUT)]
    assert any(word in reason.lower() for word in ("grace", "timeout", "unavailable")), reason
    assert any(r["round"] > left_out["round"] and CUT in r["participants"] for r in rows)
    assert len(rows) == ROUNDS
    assert json.loads((tmp_path / "summary.json").read_text())["rounds"] == ROUNDS
    log = deployment.nodes[CUT].log_file.read_text()
    assert log.count("SuperNode ID:") == 1 and "Connection successful after" in log
    assert not processes_of(str(deployment.home))
    assert all(n.process.poll() is not None for n in deployment.nodes)


@pytest.mark.slow
def test_wrong_address_and_unregistered_key_are_refused(network, tmp_path):
    other_address = network.add_address("superlink")  # listened on, not in the certificate
    deployment = deployment_on(network, tmp_path, 1)
    with deployment:
        stranger = network.exec("stranger")
        config = {"partition-id": 0, "num-partitions": 1}
        wrong = deployment.add_node(
            config, stranger, superlink=f"{other_address}:{deployment.port}"
        )
        deployment.register(wrong.key)  # a registered key: only the address is wrong
        unregistered = deployment.add_node(config, stranger)
        for node, cause in (
            (wrong, f"IP address mismatch, certificate is not valid for '{other_address}'"),
            (unregistered, "Failed to activate SuperNode"),
        ):
            assert deployment.start_node(node.index).wait(timeout=120) == REFUSED_STATUS
            log = node.log_file.read_text()
            assert REFUSED_LOG in log and cause in log, log
        assert deployment.online_nodes() == 1
    assert not processes_of(str(deployment.home)) and not deployment.home.exists()


# Run in a device's network stack: the statuses of Control, Runtime and Fleet-health requests
# to what the devices dial (trusting only the CA), and whether the SuperLink's own port answers.
_PROBE = """
import http.client, json, socket, ssl, sys
host, port, link_port, cafile = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
statuses = {}
for method, path in [("GET", "/health"), ("POST", "/v1/control/register-node"),
                     ("POST", "/v1/control/start-run"), ("POST", "/v1/runtime/acquire-task")]:
    tls = ssl.create_default_context(cafile=cafile)
    connection = http.client.HTTPSConnection(host, port, context=tls, timeout=10)
    connection.request(method, path, body=b"{}" if method == "POST" else None)
    statuses[path] = connection.getresponse().status
try:
    socket.create_connection((host, link_port), timeout=5).close()
    link = "open"
except OSError as exc:
    link = type(exc).__name__
print(json.dumps({"statuses": statuses, "superlink port": link}))
"""


@pytest.mark.slow
@pytest.mark.security
def test_only_the_fleet_api_faces_the_device_network(network, tmp_path):
    """From a host with only the CA certificate, and from a registered device's host: the
    Control and Runtime APIs are refused (403) and the SuperLink's own port is closed."""
    deployment = deployment_on(network, tmp_path, 1)
    with deployment:
        arguments = [network.addresses["superlink"], str(deployment.port)]
        arguments += [str(deployment.http_port), str(deployment.tls.ca_cert)]
        for host in ("stranger", "node-0"):
            probe = [*network.exec(host), sys.executable, "-c", _PROBE, *arguments]
            seen = json.loads(subprocess.run(probe, capture_output=True, check=True).stdout)
            assert seen == {
                "statuses": {
                    "/health": 200,
                    "/v1/control/register-node": 403,
                    "/v1/control/start-run": 403,
                    "/v1/runtime/acquire-task": 403,
                },
                "superlink port": "ConnectionRefusedError",
            }, host
        assert deployment.online_nodes() == 1  # the device itself is served
    assert not processes_of(str(deployment.home))
