"""One malicious device among honest ones: a poisoned update is clipped, a lying profile excluded.

Each attack is run against ``aggregation = mean`` (the behaviour before bounded updates) to
show that it works there, and against the defaults to show that it is refused.
"""

import json
import logging

import numpy as np
import pytest
from flwr.clientapp import ClientApp
from support.fake_grid import LocalGrid
from support.scripted import initial_arrays, make_strategy, scripted_client

from client.app import app as client_app
from scheduler.channel import path_gain
from server.app import run
from strategy import policy_for_scheme
from strategy.aggregation import Aggregator
from strategy.validation import TooFewDevicesError
from task.arrays import array_record, record_views
from task.config import resolve_run_config

pytestmark = pytest.mark.security

LIE = {"cpu-hz": 1e12, "path-gain": 1.0}


@pytest.fixture(autouse=True)
def quiet_flower():
    logging.getLogger("flwr").setLevel(logging.ERROR)


def attacked_by(pid, change):
    """The scripted client, whose partition ``pid`` changes its train and profile replies."""
    inner, app = scripted_client(), ClientApp()

    def handle(msg, context):
        reply = inner(msg, context)
        return change(reply) if context.node_config["partition-id"] == pid else reply

    app.query("profile")(handle)
    app.train()(handle)
    return app


def scaled_gradient(reply):
    if "grads" in reply.content:
        grads = record_views(reply.content["grads"])
        reply.content["grads"] = array_record({"w": grads["w"] * np.float32(1e30)})
    return reply


def lying_profile(reply):
    if "profile" in reply.content:
        for key, value in LIE.items():
            reply.content["profile"][key] = value
    return reply


def final_w(app, aggregation, nodes=3, policy="full"):
    strategy = make_strategy(policy_for_scheme(policy))
    strategy.aggregator = Aggregator(aggregation)
    grid = LocalGrid(app, num_nodes=nodes)
    result = strategy.start(grid=grid, initial_arrays=initial_arrays(), num_rounds=2)
    return record_views(result.arrays)["w"], strategy


def test_a_1e30_gradient_wrecks_the_mean_and_is_clipped_by_default():
    honest, _ = final_w(scripted_client(), "clipped")
    wrecked, _ = final_w(attacked_by(2, scaled_gradient), "mean")
    assert np.all(np.isfinite(wrecked)) and np.abs(wrecked).max() > 1e27
    clipped, strategy = final_w(attacked_by(2, scaled_gradient), "clipped")
    # The attacker counts as 4 x the median gradient norm (device 1's, 2): at most twice
    # the honest step; its weight stays its batch share.
    assert np.abs(clipped).max() <= 2 * np.abs(honest).max()
    assert all(r.participants == [0, 1, 2] and not r.excluded for r in strategy.records)


@pytest.mark.parametrize("rule", ["trimmed-mean", "median"])
def test_the_robust_means_leave_the_1e30_gradient_out(rule):
    """Six equal weights: the trimmed mean's 0.2 at each end holds one device entirely.

    The honest gradients are 1 to 6 (mean 3.5); a robust mean of them lies within that range.
    """
    robust, _ = final_w(attacked_by(2, scaled_gradient), rule, nodes=6)
    honest, _ = final_w(scripted_client(), "mean", nodes=6)
    assert np.abs(robust).max() <= 6 / 3.5 * np.abs(honest).max()


def test_a_lying_profile_is_excluded_and_the_others_are_scheduled_as_without_it():
    _, alone = final_w(scripted_client(), "clipped", nodes=2, policy="proposed")
    _, attacked = final_w(attacked_by(2, lying_profile), "mean", nodes=3, policy="proposed")
    for record, honest in zip(attacked.records, alone.records, strict=True):
        assert record.excluded == {
            "2": f"implausible profile: path-gain 1.0 exceeds {path_gain(10.0):g}"
        }
        assert record.partition_ids == [0, 1]
        assert record.batch_sizes == honest.batch_sizes
        assert record.uplink_slots_s == honest.uplink_slots_s


def simulate(tmp_path, node_config=None, **overrides):
    """Run 2 rounds of 4 devices; ``node_config`` adds to partition 1's node config."""
    config = resolve_run_config(
        {"num-server-rounds": 2, "min-nodes": 4, "device": "cpu", "seed": 3,
         "results-dir": str(tmp_path), **overrides}
    )  # fmt: skip
    grid = LocalGrid(client_app, 4, config)
    grid.contexts[1001].node_config.update(node_config or {})
    return run(grid, config, run_id=1)


def rows_of(directory):
    return [json.loads(line) for line in (directory / "rounds.jsonl").read_text().splitlines()]


def test_one_attacker_in_a_simulation_is_clipped_or_excluded(tmp_path):
    clean = rows_of(simulate(tmp_path / "clean"))
    with pytest.raises(TooFewDevicesError, match="round 2: 0 usable device"):  # all NaN
        simulate(tmp_path / "mean", attacker=1, aggregation="mean")
    clipped = rows_of(simulate(tmp_path / "clipped", attacker=1))
    assert clipped[-1]["test_accuracy"] == pytest.approx(clean[-1]["test_accuracy"], abs=0.05)
    assert [r["batch_sizes"] for r in clipped] == [r["batch_sizes"] for r in clean]
    lying = rows_of(simulate(tmp_path / "lying", attacker=1, attack="lying-profile"))
    for row in lying:
        assert row["excluded"] == {"1": "implausible profile: path-gain 1.0 exceeds 5.12861e-06"}
        assert row["partition_ids"] == [0, 2, 3]


def test_a_foreign_partition_claim_is_refused_and_the_pinned_device_kept(tmp_path):
    rows = rows_of(simulate(tmp_path / "foreign", attacker=1, attack="foreign-partition"))
    assert rows[0]["participants"] == [0, 1, 2, 3] and rows[0]["excluded"] == {}
    # From round 2 the attacker (node 1001) reports in partition 2's name; node 1002 holds it.
    assert rows[1]["participants"] == [0, 2, 3]
    assert rows[1]["excluded"] == {"1": "partition 2 is pinned to node 1002"}


def summary_of(directory):
    return json.loads((directory / "summary.json").read_text())


def test_huge_batch_statistics_end_a_mean_run_and_are_clipped_by_default(tmp_path):
    """BatchNorm means of 1e30 pass every reply check; pooled, their variance overflows."""
    rounds = {"num-server-rounds": 5}
    clean = rows_of(simulate(tmp_path / "clean", **rounds))
    attack = {"attacker": 1, "attack": "huge-statistics", **rounds}
    mean = simulate(tmp_path / "mean", aggregation="mean", **attack)
    assert len(rows_of(mean)) == 1 and summary_of(mean)["stopped"].startswith(
        "training diverged: round 1's new model was refused ('0.1.running_var' holds NaN"
    )
    clipped = rows_of(simulate(tmp_path / "clipped", **attack))
    assert len(clipped) == 5 and not any(r["excluded"] for r in clipped)
    assert clipped[-1]["test_accuracy"] == pytest.approx(clean[-1]["test_accuracy"], abs=0.02)


def test_a_local_model_with_a_negative_variance_is_excluded(tmp_path):
    """model-feel: the attacker's buffer change times 1e30 leaves the BN variance negative."""
    rounds = {"num-server-rounds": 3, "scheme": "model-feel"}
    clean = rows_of(simulate(tmp_path / "clean", **rounds))
    attack = {"attacker": 1, "attack": "huge-statistics", **rounds}
    attacked = rows_of(simulate(tmp_path / "attacked", aggregation="mean", **attack))
    for row in attacked:
        assert row["excluded"] == {"1": "its model's '0.1.running_var' holds a negative variance"}
    assert attacked[-1]["test_accuracy"] == pytest.approx(clean[-1]["test_accuracy"], abs=0.02)


@pytest.mark.parametrize(
    ("claim", "reason"),
    [
        ({"cycles-per-sample": 1.0}, "cycles-per-sample 1.0: 2.04749e+06 FLOPs per cycle, above"),
        (
            {"update-cycles": 1e12},
            "update-cycles 1000000000000.0 at cpu-hz 7e+08: 74.3372 FLOP/s, below min-flops 1e+07",
        ),
    ],
)
def test_a_device_claiming_an_impossible_cpu_is_excluded(tmp_path, claim, reason):
    """The digits CNN's training FLOPs of a sample in one cycle, or its update at 74 FLOP/s."""
    rows = rows_of(simulate(tmp_path, node_config=claim))
    for row in rows:
        assert row["excluded"]["1"].startswith(f"implausible profile: {reason}")
        assert row["partition_ids"] == [0, 2, 3]
