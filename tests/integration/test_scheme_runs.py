"""Every scheme through the ServerApp's run with the real ClientApp, 3 devices on digits."""

import json
import logging

import pytest

from client.app import app as client_app
from client.local import Node, shard
from server.app import run
from server.inprocess import InProcessGrid
from strategy import SCHEME_NAMES
from task.config import resolve_run_config

CLIENTS, ROUNDS = 3, 3


@pytest.fixture(autouse=True)
def quiet_flower():
    logging.getLogger("flwr").setLevel(logging.WARNING)


def simulate(directory, **overrides):
    config = resolve_run_config(
        {"num-server-rounds": ROUNDS, "min-nodes": CLIENTS, "device": "cpu",
         "results-dir": str(directory), **overrides}
    )  # fmt: skip
    run(InProcessGrid(client_app, CLIENTS, config), config, run_id=1)
    rows = [json.loads(line) for line in (directory / "rounds.jsonl").read_text().splitlines()]
    return rows, json.loads((directory / "summary.json").read_text())


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("schemes")
    schemes = (*SCHEME_NAMES, "gradient-feel-bmax")
    return {scheme: simulate(root / scheme, scheme=scheme) for scheme in schemes}


def partition_sizes():
    config = resolve_run_config({})
    return [len(shard(Node(pid, CLIENTS, config, {}))) for pid in range(CLIENTS)]


def test_every_scheme_writes_its_rounds_on_one_clock(runs):
    for scheme, (rows, summary) in runs.items():
        assert [r["round"] for r in rows] == [1, 2, 3], scheme
        latencies = [r["round_latency_s"] for r in rows]
        assert rows[-1]["sim_time_s"] == pytest.approx(sum(latencies)), scheme
        assert summary["rounds"] == ROUNDS and summary["config"]["scheme"] == scheme
    assert {rows[0]["policy"] for rows, _ in runs.values()} == {
        "optimal", "online", "full", "random", "gradient-feel", "gradient-feel-bmax",
        "model-feel", "individual"
    }  # fmt: skip


def test_model_feel_trains_every_device_for_one_epoch_per_round(runs):
    rows, summary = runs["model-feel"]
    sizes = partition_sizes()
    assert all(r["batch_sizes"] == sizes and r["global_batch"] == sum(sizes) for r in rows)
    assert rows[-1]["test_accuracy"] > summary["initial_test_accuracy"] + 0.3


def test_individual_keeps_the_initial_model_until_its_exchange(runs):
    rows, summary = runs["individual"]
    assert [r["test_accuracy"] for r in rows[:-1]] == [summary["initial_test_accuracy"]] * 2
    assert rows[-1]["test_accuracy"] > summary["initial_test_accuracy"] + 0.3
    assert [r["uplink_latency_s"] > 0 for r in rows] == [False, False, True]


def test_gradient_schemes_differ_only_in_batches_and_slots(runs):
    online, full = runs["online"][0], runs["full"][0]
    assert all(r["batch_sizes"] == [1, 1, 1] for r in online)
    assert all(r["global_batch"] == 3 * min(128, *partition_sizes()) for r in full)
    bmax = runs["gradient-feel-bmax"][0]
    assert [r["batch_sizes"] for r in bmax] == [r["batch_sizes"] for r in full]
    assert bmax[0]["uplink_slots_s"] == pytest.approx([0.01 / 3] * 3)
    assert [r["test_loss"] for r in bmax] == [r["test_loss"] for r in full]  # same updates


def test_gradient_feel_takes_one_step_on_all_local_data_charged_for_it(runs):
    feel, full = runs["gradient-feel"][0], runs["full"][0]
    sizes = partition_sizes()
    assert max(sizes) > 128
    assert all(r["batch_sizes"] == sizes and r["global_batch"] == sum(sizes) for r in feel)
    assert feel[0]["uplink_slots_s"] == pytest.approx([0.01 / 3] * 3)
    assert feel[0]["compute_latency_s"] > full[0]["compute_latency_s"]


def test_time_budget_ends_the_run_early(tmp_path):
    rows, summary = simulate(tmp_path, **{"num-server-rounds": 50, "time-budget-s": 1.0})
    assert 1 < len(rows) < 50 and summary["rounds"] == len(rows)
    assert rows[-1]["sim_time_s"] >= 1.0 > rows[-2]["sim_time_s"]
