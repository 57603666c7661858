"""A real in-process run with run-config ``tensorboard``: the event file matches rounds.jsonl."""

import json
import logging

import pytest
from support.fake_grid import LocalGrid
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from client.app import app as client_app
from server.app import run
from task.config import resolve_run_config


@pytest.fixture(autouse=True)
def quiet_flower():
    logging.getLogger("flwr").setLevel(logging.WARNING)


def test_a_run_logs_every_round_at_its_simulated_milliseconds(tmp_path):
    config = resolve_run_config(
        {
            "num-server-rounds": 2,
            "min-nodes": 3,
            "device": "cpu",
            "results-dir": str(tmp_path / "out"),
            "tensorboard": str(tmp_path / "tb"),
        }
    )
    directory = run(LocalGrid(client_app, 3, config), config, run_id=7)
    rows = [json.loads(line) for line in (directory / "rounds.jsonl").read_text().splitlines()]
    initial = json.loads((directory / "summary.json").read_text())["initial_test_accuracy"]
    board = EventAccumulator(str(tmp_path / "tb"), size_guidance={"histograms": 0})
    board.Reload()
    steps = [round(row["sim_time_s"] * 1000) for row in rows]
    accuracy = board.Scalars("test/accuracy")
    assert [e.step for e in accuracy] == [0, *steps]
    assert [e.value for e in accuracy] == pytest.approx(
        [initial, *(row["test_accuracy"] for row in rows)]
    )
    energy = board.Scalars("energy/total_j")
    assert [e.value for e in energy] == pytest.approx([row["sim_energy_j"] for row in rows])
    tags = board.Tags()
    assert {"train/loss", "latency/round_s", "schedule/global_batch"} <= set(tags["scalars"])
    assert {"devices/batch_size", "devices/uplink_slot_s"} <= set(tags["histograms"])
    assert [h.histogram_value.num for h in board.Histograms("devices/batch_size")] == [3, 3]
