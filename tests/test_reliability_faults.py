"""Fault injection: each kind is caught; an in-process run excludes faulty devices or stops."""

import json
import logging
from collections import Counter

import numpy as np
import pytest
from fake_grid import LocalGrid
from flwr.app import Array, ArrayRecord, MetricRecord, RecordDict
from test_reliability_validation import MODEL, PARAMETERS, check, profile

from client.app import app as client_app
from client.faults import (
    PROFILE_FAULTS,
    TRAIN_FAULTS,
    InjectedFault,
    corrupt_profile,
    corrupt_train,
    draw_fault,
    inject_train,
)
from server.app import run
from server.checkpoint import load_checkpoint
from strategy import InstanceSettings
from strategy.validation import TooFewDevicesError, check_profile
from task.config import resolve_run_config
from task.protocol import ReplyError

SETTINGS = InstanceSettings("cpu", gradient_size_bits=32e4)


@pytest.fixture(autouse=True)
def quiet_flower():
    logging.getLogger("flwr").setLevel(logging.ERROR)


def sound_reply():
    update = {k: MODEL[k] + 1 for k in PARAMETERS}
    return update, {"batch-size": 8, "train-loss": 0.5, "partition-id": 1}


@pytest.mark.parametrize("kind", PROFILE_FAULTS)
@pytest.mark.parametrize("draw", range(5))
def test_each_profile_fault_is_caught(kind, draw):
    report = corrupt_profile(kind, profile(), np.random.default_rng(draw))
    with pytest.raises(ReplyError, match="negative" if kind == "negative" else "not finite"):
        check_profile(report, SETTINGS)


@pytest.mark.parametrize("kind", [k for k in TRAIN_FAULTS if k != "exception"])
@pytest.mark.parametrize("draw", range(5))
def test_each_train_fault_is_caught(kind, draw):
    update, metrics = corrupt_train(kind, *sound_reply(), np.random.default_rng(draw))
    buffers = {k: v for k, v in MODEL.items() if k not in PARAMETERS}
    content = RecordDict(
        {
            "grads": ArrayRecord({k: Array(v) for k, v in update.items()}),
            "buffers": ArrayRecord({k: Array(v) for k, v in buffers.items()}),
            "metrics": MetricRecord(metrics),
        }
    )
    with pytest.raises(ReplyError):
        check(content, assigned=8)


def test_exception_fault_raises_in_the_client():
    with pytest.raises(InjectedFault, match="partition 1"):
        corrupt_train("exception", *sound_reply(), np.random.default_rng(0))


def test_faults_are_seeded_at_the_rate_and_cover_every_kind():
    draws = [draw_fault("train", 0.3, 7, pid, r)[0] for pid in range(40) for r in range(1, 51)]
    assert draws == [
        draw_fault("train", 0.3, 7, pid, r)[0] for pid in range(40) for r in range(1, 51)
    ]
    kinds = Counter(draws)
    assert abs(1 - kinds.pop(None) / len(draws) - 0.3) < 0.03
    assert set(kinds) == set(TRAIN_FAULTS)
    assert all(draw_fault("profile", 0.0, 7, pid, 1)[0] is None for pid in range(100))
    assert all(draw_fault("profile", 1.0, 7, pid, 1)[0] in PROFILE_FAULTS for pid in range(100))
    update, metrics = sound_reply()
    assert inject_train(update, metrics, {"inject-faults": 0.0, "seed": 7}, 1) == (update, metrics)


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


def test_too_few_devices_stop_the_run_with_nothing_half_written(tmp_path):
    config, grid = simulate(tmp_path, **{"inject-faults": 0.4, "seed": 4, "min-devices": 2})
    config["num-server-rounds"] = 3
    with pytest.raises(TooFewDevicesError, match=r"round 3: 1 usable device.*min-devices 2"):
        run(grid, config, run_id=1)
    assert [r["round"] for r in rows_of(tmp_path)] == [1, 2]
    assert load_checkpoint(tmp_path).round == 2
    assert not (tmp_path / "summary.json").exists()
