"""Fault injection in process: a run excludes the faulty devices, or stops when too few are left."""

import json
import logging

import pytest
from support.fake_grid import LocalGrid

from client.app import app as client_app
from server.app import run
from server.checkpoint import load_checkpoint
from strategy.validation import TooFewDevicesError
from task.config import resolve_run_config


@pytest.fixture(autouse=True)
def quiet_flower():
    logging.getLogger("flwr").setLevel(logging.ERROR)


def simulate(tmp_path, **overrides):
    config = resolve_run_config(
        {"num-server-rounds": 4, "min-nodes": 4, "device": "cpu",
         "results-dir": str(tmp_path), **overrides}
    )  # fmt: skip
    return config, LocalGrid(client_app, 4, config)


def rows_of(directory):
    return [json.loads(line) for line in (directory / "rounds.jsonl").read_text().splitlines()]


def test_run_with_injected_faults_excludes_the_faulty_devices(tmp_path, caplog):
    config, grid = simulate(tmp_path, **{"inject-faults": 0.3, "seed": 3})
    with caplog.at_level(logging.WARNING, logger="flwr"):
        rows = rows_of(run(grid, config, run_id=1))
    assert [r["round"] for r in rows] == [1, 2, 3, 4]
    reasons = [reason for r in rows for reason in r["excluded"].values()]
    assert any("injected fault: training failed on partition 0" in x for x in reasons)
    assert any("batch-size" in x and "was assigned" in x for x in reasons)
    assert any(x.startswith("profile ") for x in reasons)
    assert any("holds NaN or inf values" in x for x in reasons)
    for r in rows:
        excluded = {int(pid) for pid in r["excluded"]}
        assert sorted(set(range(4)) - excluded) == r["participants"]
        assert set(r["partition_ids"]) <= set(r["participants"]) | excluded
        batches = dict(zip(r["partition_ids"], r["batch_sizes"], strict=True))
        assert r["global_batch"] == sum(batches[p] for p in r["participants"])
        for pid, reason in r["excluded"].items():
            assert f"device {pid} " in caplog.text and reason[:40] in caplog.text
    profile_excluded = [p for r in rows for p, x in r["excluded"].items() if "profile" in x]
    assert profile_excluded and all(
        int(p) not in r["partition_ids"]
        for r in rows
        for p, x in r["excluded"].items()
        if "profile" in x
    )


def test_too_few_devices_stop_the_run_after_its_last_whole_round(tmp_path):
    config, grid = simulate(tmp_path, **{"inject-faults": 0.4, "seed": 4, "min-devices": 2})
    config["num-server-rounds"] = 3
    with pytest.raises(TooFewDevicesError, match=r"round 3: 1 usable device.*min-devices 2"):
        run(grid, config, run_id=1)
    assert [r["round"] for r in rows_of(tmp_path)] == [1, 2]
    assert load_checkpoint(tmp_path).round == 2  # --resume goes on from there
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["rounds"] == 2
    assert summary["stopped"].startswith("stopped early: round 3: 1 usable device")


@pytest.mark.parametrize("scheme", ["proposed", "model-feel"])
def test_below_32_bits_faults_hit_the_encoded_update_and_the_decoder_rejects_it(tmp_path, scheme):
    bits = {"gradient-bits": 8, "model-bits": 8, "scheme": scheme}
    config, grid = simulate(tmp_path, **{"inject-faults": 0.3, "seed": 3, **bits})
    rows = rows_of(run(grid, config, run_id=1))
    reasons = [reason for r in rows for reason in r["excluded"].values()]
    assert any(x.startswith("encoded '") for x in reasons), reasons
    for r in rows:
        assert sorted(set(range(4)) - {int(p) for p in r["excluded"]}) == r["participants"]
