"""The ServerApp's ``run`` in process with the real ClientApp: results directory and options."""

import json
import logging
import math
import socket

import pytest
from support.fake_grid import LocalGrid

from client.app import app as client_app
from server.app import results_directory, run
from task.config import resolve_run_config


@pytest.fixture(autouse=True)
def quiet_flower():
    logging.getLogger("flwr").setLevel(logging.WARNING)


def simulate(tmp_path, **overrides):
    config = resolve_run_config(
        {
            "num-server-rounds": 2,
            "min-nodes": 3,
            "device": "cpu",
            "results-dir": str(tmp_path / "out"),
            **overrides,
        }
    )
    directory = run(LocalGrid(client_app, 3, config), config, run_id=7)
    rows = [json.loads(line) for line in (directory / "rounds.jsonl").read_text().splitlines()]
    return directory, rows


def test_results_directory_files(tmp_path):
    directory, rows = simulate(tmp_path)
    assert directory == tmp_path / "out"
    assert [r["round"] for r in rows] == [1, 2]
    assert rows[1]["sim_time_s"] == pytest.approx(
        rows[0]["sim_time_s"] + rows[1]["round_latency_s"]
    )
    assert rows[0]["partition_ids"] == [0, 1, 2] and len(rows[0]["uplink_slots_s"]) == 3
    assert 0.0 <= rows[1]["test_accuracy"] <= 1.0 and rows[1]["wall_time_s"] > 0
    phases = rows[1]["wall_phases_s"]
    assert list(phases) == ["query", "schedule", "train", "aggregate", "evaluate"]
    assert all(s >= 0 for s in phases.values())
    assert sum(phases.values()) <= rows[1]["round_wall_time_s"]
    assert rows[1]["places"] == dict.fromkeys(("0", "1", "2"), socket.gethostname()[:64])
    summary = json.loads((directory / "summary.json").read_text())
    assert summary["config"]["results-dir"] == str(directory)
    assert summary["final_test_accuracy"] == rows[-1]["test_accuracy"]
    assert summary["sim_time_s"] == rows[-1]["sim_time_s"]
    assert summary["model"]["gradient_size_bits"] == 32 * summary["model"]["num_params"]
    assert (directory / "loss_vs_time.png").is_file()
    assert (directory / "accuracy_vs_time.png").is_file()


def test_eval_every_evaluates_those_rounds_and_the_last(tmp_path):
    directory, rows = simulate(tmp_path, **{"num-server-rounds": 5, "eval-every": 2})
    evaluated = [r["round"] for r in rows if r["test_accuracy"] is not None]
    assert evaluated == [2, 4, 5] and len(rows) == 5
    assert all(r["test_loss"] is None for r in rows if r["round"] in (1, 3))
    summary = json.loads((directory / "summary.json").read_text())
    assert summary["final_test_accuracy"] == rows[-1]["test_accuracy"]
    assert summary["best_test_accuracy"] == max(rows[i]["test_accuracy"] for i in (1, 3, 4))


def test_eval_every_evaluates_the_round_that_spends_the_time_budget(tmp_path):
    overrides = {"num-server-rounds": 50, "eval-every": 50, "time-budget-s": 1.0}
    directory, rows = simulate(tmp_path, **overrides)
    assert 1 < len(rows) < 50 and rows[-1]["sim_time_s"] >= 1.0 > rows[-2]["sim_time_s"]
    assert [r["round"] for r in rows if r["test_accuracy"] is not None] == [len(rows)]
    summary = json.loads((directory / "summary.json").read_text())
    assert summary["final_test_loss"] == rows[-1]["test_loss"] is not None


def test_eval_every_s_evaluates_the_rounds_that_cross_each_multiple_of_it(tmp_path):
    overrides = {"num-server-rounds": 50, "eval-every-s": 0.25, "time-budget-s": 1.0}
    _, rows = simulate(tmp_path, **overrides)
    starts = [0.0] + [r["sim_time_s"] for r in rows[:-1]]
    crossing = [
        r["round"]
        for start, r in zip(starts, rows, strict=True)
        if int(r["sim_time_s"] // 0.25) > int(start // 0.25) or r is rows[-1]
    ]
    evaluated = [r["round"] for r in rows if r["test_accuracy"] is not None]
    assert evaluated == crossing and 4 <= len(evaluated) < len(rows)


def test_a_step_that_leaves_the_global_model_not_finite_is_refused_and_stops_the_run(tmp_path):
    directory, rows = simulate(tmp_path, **{"num-server-rounds": 5, "learning-rate": 1e300})
    assert [r["round"] for r in rows] == [1] and rows[0]["test_accuracy"] is not None
    summary = json.loads((directory / "summary.json").read_text())
    assert summary["stopped"].startswith("training diverged: round 1's new model was refused (")
    assert summary["stopped"].endswith(
        "holds NaN or inf values); the global model is that of round 0"
    )
    assert math.isfinite(rows[0]["test_loss"])  # the initial model, evaluated


# The digits CNN's parameter tensors: conv and linear weights and biases.
CNN_TENSORS = 10


def test_gradient_bits_set_the_encoded_gradient_size(tmp_path):
    directory, _ = simulate(tmp_path, **{"gradient-bits": 8, "model-bits": 2})
    model = json.loads((directory / "summary.json").read_text())["model"]
    # 8 bits per element and a float32 low and step per tensor (whole bytes at 8 bits)
    assert model["gradient_size_bits"] == 8 * model["num_params"] + 64 * CNN_TENSORS


def test_model_bits_set_the_model_size_of_model_feel(tmp_path):
    overrides = {"scheme": "model-feel", "gradient-bits": 2, "model-bits": 8}
    directory, rows = simulate(tmp_path, **overrides)
    model = json.loads((directory / "summary.json").read_text())["model"]
    assert model["gradient_size_bits"] == 8 * model["num_params"] + 64 * CNN_TENSORS
    assert rows[-1]["test_accuracy"] is not None


def test_gpu_scenario_runs(tmp_path):
    from client.fleet import FleetConfig

    _, rows = simulate(tmp_path, scenario="gpu")
    assert all(r["round_latency_s"] > 0 for r in rows)
    # Lemma 2: with GPU profiles every batch lies in the compute-bound region.
    threshold = FleetConfig().gpu_batch_threshold
    assert all(b >= threshold for r in rows for b in r["batch_sizes"])


def test_fading_reschedules_every_round(tmp_path):
    _, rows = simulate(tmp_path, fading=True)
    assert rows[0]["uplink_slots_s"] != rows[1]["uplink_slots_s"]


def test_empty_results_dir_defaults_to_run_id_under_cwd(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert results_directory("", 42) == tmp_path / "results" / "run-42"
    assert results_directory("rel", 42) == tmp_path / "rel"
