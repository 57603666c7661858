"""In-process runs with checkpoints: resumed exactly, cursors from the server, a failed write."""

import json
import logging

import numpy as np
import pytest
from support.fake_grid import LocalGrid

from client.app import app as client_app
from server import checkpoint as ckpt
from server import rounds as server_rounds
from server.app import run
from server.results import WALL_KEYS
from task.config import resolve_run_config


@pytest.fixture(autouse=True)
def quiet_flower():
    logging.getLogger("flwr").setLevel(logging.ERROR)


class CrashingGrid(LocalGrid):
    """A grid whose server process dies when round ``crash_round`` sends its train messages."""

    def __init__(self, *args, crash_round, **kwargs):
        super().__init__(*args, **kwargs)
        self.crash_round = crash_round

    def push_messages(self, messages):
        messages = list(messages)
        first = messages[0].metadata if messages else None
        if first and first.message_type == "train" and first.group_id == str(self.crash_round):
            raise KeyboardInterrupt("killed")
        return super().push_messages(messages)


def rows_without_wall_time(directory):
    rows = [json.loads(line) for line in (directory / "rounds.jsonl").read_text().splitlines()]
    return [{k: v for k, v in row.items() if k not in WALL_KEYS} for row in rows]


def test_resumed_run_equals_the_uninterrupted_run(tmp_path):
    base = {"num-server-rounds": 3, "min-nodes": 3, "device": "cpu", "seed": 3,
            "inject-faults": 0.3, "fading": True, "scheme": "random"}  # fmt: skip
    whole = resolve_run_config({**base, "results-dir": str(tmp_path / "whole")})
    run(LocalGrid(client_app, 3, whole), whole, run_id=1)

    cut = resolve_run_config({**base, "results-dir": str(tmp_path / "cut")})
    with pytest.raises(KeyboardInterrupt):
        run(CrashingGrid(client_app, 3, cut, crash_round=3), cut, run_id=2)
    assert [r["round"] for r in rows_without_wall_time(tmp_path / "cut")] == [1, 2]
    resumed = {**cut, "resume": True}
    # A fresh grid: the devices' context.state is gone, as after a restart.
    run(LocalGrid(client_app, 3, resumed), resumed, run_id=3)

    assert rows_without_wall_time(tmp_path / "cut") == rows_without_wall_time(tmp_path / "whole")
    a, b = (ckpt.load_checkpoint(tmp_path / name) for name in ("whole", "cut"))
    assert a.round == b.round == 3 and a.strategy == b.strategy
    assert a.model.keys() == b.model.keys()
    assert all(np.array_equal(a.model[k], b.model[k]) for k in a.model)
    summary = json.loads((tmp_path / "cut" / "summary.json").read_text())
    assert summary["rounds"] == 3 and summary["wall_time_s"] >= b.rows[1]["wall_time_s"]


def test_devices_get_their_sampling_cursor_from_the_server(tmp_path):
    config = resolve_run_config(
        {"num-server-rounds": 2, "min-nodes": 2, "device": "cpu", "results-dir": str(tmp_path)}
    )
    grid = LocalGrid(client_app, 2, config)
    run(grid, config, run_id=1)
    train = [m for m in grid.sent if m.metadata.message_type == "train"]
    cursors = {}
    for message in train:
        pid = grid.contexts[message.metadata.dst_node_id].node_config["partition-id"]
        sent = message.content["config"]
        assert sent["sample-cursor"] == cursors.get(pid, 0)
        cursors[pid] = sent["sample-cursor"] + sent["batch-size"]
    assert ckpt.load_checkpoint(tmp_path).strategy["cursors"] == {
        str(p): c for p, c in cursors.items()
    }


def test_a_failed_checkpoint_write_stops_the_run_without_its_row(tmp_path, monkeypatch):
    """Checkpoints are written in a background thread; its error still ends the run."""
    written = []

    def disk_full_after_one(directory, checkpoint):
        if written:
            raise OSError("No space left on device")
        written.append(checkpoint.round)
        return ckpt.save_checkpoint(directory, checkpoint)

    monkeypatch.setattr(server_rounds, "save_checkpoint", disk_full_after_one)
    config = resolve_run_config(
        {"num-server-rounds": 4, "min-nodes": 3, "device": "cpu", "results-dir": str(tmp_path)}
    )
    with pytest.raises(OSError, match="No space left"):
        run(LocalGrid(client_app, 3, config), config, run_id=1)
    assert [r["round"] for r in rows_without_wall_time(tmp_path)] == [1]
    assert ckpt.load_checkpoint(tmp_path).round == 1
