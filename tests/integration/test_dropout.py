"""Device dropout: the ServerApp in process with the real ClientApp and devices that drop out."""

import json
import logging
import uuid

import pytest
from flwr.server.superlink.linkstate.utils import (
    create_message_error_unavailable_res_message as unavailable_reply,
)
from support.fake_grid import LocalGrid

import server.app
import strategy.profiles
from client.app import app as client_app
from server.app import run
from strategy.deadlines import GRACE_OVER
from task.config import resolve_run_config

TIMEOUT_S = 0.5


@pytest.fixture(autouse=True)
def quiet_flower():
    logging.getLogger("flwr").setLevel(logging.WARNING)


class DropoutGrid(LocalGrid):
    """Nodes 1000 + i; ``offline[r]`` are not connected in round r; ``mute[r]`` are but never
    report their round-r profile (neither in their round r - 1 train reply nor to a query);
    ``silent[r]`` report it but never reply to training (they crash mid-round); for
    ``unavailable[r]`` the SuperLink answers training with its Node Unavailable error (their
    heartbeat expired).

    "Connected in round r" means from the moment round r - 1's train messages are out.
    """

    def __init__(self, num_nodes, config, offline=None, mute=None, silent=None, unavailable=None):
        super().__init__(client_app, num_nodes, config)
        self.offline = offline or {}
        self.mute = mute or {}
        self.silent = silent or {}
        self.unavailable = unavailable or {}
        self.trained = 0  # the last round whose train messages were pushed
        self.polls = 0

    def get_node_ids(self):
        self.polls += 1
        upcoming = self.trained + 1
        return [n for n in self.contexts if n - 1000 not in self.offline.get(upcoming, ())]

    def push_messages(self, messages):
        message_ids = []
        for message in messages:
            server_round = int(message.metadata.group_id)
            node = message.metadata.dst_node_id - 1000
            lost = set(self.offline.get(server_round, ()))
            gone = set()
            if message.metadata.message_type == "query.profile":
                lost |= set(self.mute.get(server_round, ()))
            else:
                self.trained = server_round
                config = message.content["config"]
                if node in self.mute.get(config.get("profile-round"), ()):
                    del config["profile-round"]
                lost |= set(self.silent.get(server_round, ()))
                gone = set(self.unavailable.get(server_round, ()))
            if node not in lost | gone:
                message_ids += super().push_messages([message])
                continue
            message.metadata.__dict__["_message_id"] = uuid.uuid4().hex
            message_ids.append(message.metadata.message_id)
            if node in gone:
                reply = unavailable_reply(message.metadata, "node_unavail")
                self._replies[message.metadata.message_id] = reply
        return message_ids


def train(tmp_path, grid_args, **overrides):
    config = resolve_run_config(
        {
            "num-server-rounds": 6,
            "min-nodes": 3,
            "device": "cpu",
            "round-timeout-s": TIMEOUT_S,
            "results-dir": str(tmp_path / "out"),
            **overrides,
        }
    )
    grid = DropoutGrid(3, config, **grid_args)
    directory = run(grid, config, run_id=7)
    rows = [json.loads(line) for line in (directory / "rounds.jsonl").read_text().splitlines()]
    return grid, rows


def test_rounds_go_on_without_dropped_devices_and_take_them_back(tmp_path):
    drops = {"offline": {2: {2}}, "silent": {3: {1}}, "unavailable": {4: {0}}, "mute": {5: {2}}}
    _grid, rows = train(tmp_path, drops)
    participants = [r["participants"] for r in rows]
    assert participants == [[0, 1, 2], [0, 1], [0, 2], [1, 2], [0, 1], [0, 1, 2]]
    # Round 2: device 2 was not connected, so it was neither queried nor scheduled.
    assert rows[1]["partition_ids"] == [0, 1] and rows[1]["excluded"] == {}
    # Round 3: device 1 was scheduled but never replied; the round's latency is that of the
    # devices that took part, with their planned batches.
    assert rows[2]["partition_ids"] == [0, 1, 2]
    assert rows[2]["excluded"] == {"1": "no reply before the timeout"}
    assert rows[2]["global_batch"] == rows[2]["batch_sizes"][0] + rows[2]["batch_sizes"][2]
    assert rows[2]["batch_sizes"] == rows[5]["batch_sizes"]  # same plan as the full round 6
    assert rows[2]["round_latency_s"] <= rows[5]["round_latency_s"]
    # Round 4: the SuperLink's error reply (sent from its own node id) names device 0.
    assert list(rows[3]["excluded"]) == ["0"] and "Node Unavailable" in rows[3]["excluded"]["0"]
    # Round 5: device 2 went quiet before the profile query; it is named by its partition.
    assert rows[4]["partition_ids"] == [0, 1]
    assert rows[4]["excluded"] == {"2": "no reply before the timeout"}
    assert rows[5]["excluded"] == {}
    # The profile query and training both wait for a missing reply until the timeout.
    assert TIMEOUT_S <= rows[2]["wall_phases_s"]["train"] < TIMEOUT_S + 1.0
    assert TIMEOUT_S <= rows[4]["wall_phases_s"]["query"] < TIMEOUT_S + 1.0


def test_first_round_waits_for_min_nodes_at_most_the_connect_timeout(tmp_path, monkeypatch):
    monkeypatch.setattr(strategy.profiles, "NODE_POLL_S", 0.01)
    grid, rows = train(
        tmp_path, {"offline": {1: {1}}}, **{"num-server-rounds": 1, "connect-timeout-s": 0.05}
    )
    assert rows[0]["participants"] == [0, 2]
    assert grid.polls > 2  # it waited for the third node before going on


def test_no_connected_node_fails_the_round(tmp_path, monkeypatch):
    monkeypatch.setattr(strategy.profiles, "NODE_POLL_S", 0.01)
    with pytest.raises(RuntimeError, match="round 1: no node connected"):
        train(
            tmp_path,
            {"offline": {1: {0, 1, 2}}},
            **{"num-server-rounds": 1, "connect-timeout-s": 0.05},
        )


@pytest.mark.security
def test_on_a_deployment_grid_a_silent_device_holds_a_round_only_for_the_grace(
    tmp_path, monkeypatch
):
    monkeypatch.setattr(server.app, "simulated", lambda grid: False)
    deadlines = {"round-timeout-s": 60.0, "round-quorum": 0.5, "round-grace-s": 0.3}
    _grid, rows = train(tmp_path, {"silent": {2: {1}}, "mute": {4: {0}}}, **deadlines)
    assert rows[1]["excluded"] == {"1": GRACE_OVER} and rows[1]["participants"] == [0, 2]
    assert rows[3]["excluded"] == {"0": GRACE_OVER} and rows[3]["participants"] == [1, 2]
    assert 0.3 <= rows[1]["wall_phases_s"]["train"] < 0.3 + 2.0  # not round-timeout-s
    assert 0.3 <= rows[3]["wall_phases_s"]["query"] < 0.3 + 2.0
    assert [r["excluded"] for r in rows[4:]] == [{}, {}]


@pytest.mark.security
def test_a_device_silent_three_rounds_in_a_row_is_dropped(tmp_path, monkeypatch):
    monkeypatch.setattr(server.app, "simulated", lambda grid: False)
    silent = {"silent": {2: {1}, 3: {1}, 4: {1}}}
    deadlines = {"round-timeout-s": 60.0, "round-grace-s": 0.1, "max-silent-rounds": 3}
    grid, rows = train(tmp_path, silent, **deadlines)
    assert [r["participants"] for r in rows] == [[0, 1, 2]] + [[0, 2]] * 5
    assert [r["excluded"] for r in rows[1:4]] == [{"1": GRACE_OVER}] * 3
    dropped = {"1": "dropped: no reply in 3 rounds in a row"}
    assert [r["excluded"] for r in rows[4:]] == [dropped, dropped]
    assert [r["partition_ids"] for r in rows[4:]] == [[0, 2], [0, 2]]
    asked = [m for m in grid.sent if m.metadata.dst_node_id == 1001]
    assert max(int(m.metadata.group_id) for m in asked) == 4  # never asked after round 4
