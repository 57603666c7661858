"""FeelStrategy with the real ClientApp in process: 3 devices, 3 rounds on digits."""

import numpy as np
import pytest
import torch
from flwr.app import ArrayRecord
from support.fake_grid import LocalGrid

from client.app import app as client_app
from scheduler import Instance, get_policy
from scheduler.channel import average_rate_bps
from server.build import build_strategy
from server.evaluation import Evaluator
from task.config import resolve_run_config
from task.data import load_dataset
from task.flops import parameter_count, parameter_shapes
from task.models import build_model

ROUNDS = 3


@pytest.fixture(scope="module")
def trained():
    config = resolve_run_config({"num-server-rounds": ROUNDS, "min-nodes": 3, "device": "cpu"})
    torch.manual_seed(0)
    data = load_dataset("digits")
    model = build_model("cnn", data.num_classes, data.in_channels, data.image_size)
    initial = ArrayRecord(model.state_dict())
    strategy = build_strategy(config, parameter_shapes(model))
    grid = LocalGrid(client_app, num_nodes=3, run_config=config)
    evaluator = Evaluator(model, data.x_test, data.y_test, torch.device("cpu"))
    losses = []
    result = strategy.start(
        grid=grid,
        initial_arrays=initial,
        num_rounds=ROUNDS,
        evaluate_fn=lambda rnd, arrays: losses.append(evaluator(arrays)["test_loss"]),
    )
    return config, parameter_count(model), strategy, grid, result, losses


def test_test_loss_falls(trained):
    *_, losses = trained
    assert len(losses) == ROUNDS + 1
    assert losses[-1] < losses[0]


def test_clock_advances_by_the_schedulers_latencies(trained):
    _, num_params, strategy, grid, *_ = trained
    expected = []
    for server_round in range(1, ROUNDS + 1):
        profiles = sorted(
            (
                dict(r.content["profile"])
                for r in grid.replies
                if r.metadata.message_type == "query.profile"
                and int(r.metadata.group_id) == server_round
            ),
            key=lambda p: p["partition-id"],
        )
        rates = [float(average_rate_bps(p["path-gain"])) for p in profiles]
        instance = Instance.from_dict(
            {
                "scenario": "cpu",
                "gradient_bits": 32.0 * num_params,
                "devices": [
                    {
                        "uplink_rate_bps": rate,
                        "downlink_rate_bps": rate,
                        "cpu_hz": p["cpu-hz"],
                        "cycles_per_sample": p["cycles-per-sample"],
                        "update_cycles": p["update-cycles"],
                    }
                    for p, rate in zip(profiles, rates, strict=True)
                ],
            }
        )
        allocation = get_policy("optimal").allocate(instance, round_index=server_round - 1)
        expected.append(allocation.round_latency_s)
        record = strategy.records[server_round - 1]
        assert record.batch_sizes == allocation.batch_sizes.tolist()
        assert record.round_latency_s == allocation.round_latency_s
    assert [r.sim_time_s for r in strategy.records] == pytest.approx(np.cumsum(expected), rel=1e-12)
    assert strategy.state.sim_time_s == pytest.approx(sum(expected), rel=1e-12)


def test_every_device_trains_on_its_own_batch_size(trained):
    *_, strategy, grid, _, _ = trained
    for record in strategy.records:
        assert record.partition_ids == [0, 1, 2]
        assert record.global_batch == sum(record.batch_sizes)
        assert len(set(record.batch_sizes)) > 1  # the 3 CPU tiers get different batches
    train = [m for m in grid.sent if m.metadata.message_type == "train"]
    assert len(train) == 3 * ROUNDS
