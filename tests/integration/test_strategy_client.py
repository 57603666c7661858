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
from strategy.aggregation import batch_weights, weighted_average
from strategy.broadcast import encoded_broadcast
from task.arrays import record_views
from task.codec import decode
from task.config import resolve_run_config
from task.data import load_dataset
from task.flops import parameter_count, parameter_shapes
from task.models import build_model
from task.protocol import TrainReply

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


def reports_of(grid, server_round):
    """The profile reports of ``server_round``: query replies, or the last round's train replies."""
    for reply in grid.replies:
        kind, group = reply.metadata.message_type, int(reply.metadata.group_id)
        queried = kind == "query.profile" and group == server_round
        if queried or (
            kind == "train" and group == server_round - 1 and "profile" in reply.content
        ):
            yield dict(reply.content["profile"])


def test_clock_advances_by_the_schedulers_latencies(trained):
    _, num_params, strategy, grid, *_ = trained
    expected = []
    for server_round in range(1, ROUNDS + 1):
        profiles = sorted(reports_of(grid, server_round), key=lambda p: p["partition-id"])
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


def test_below_32_gradient_bits_the_step_takes_the_decoded_broadcast():
    overrides = {"gradient-bits": 8, "min-nodes": 3, "device": "cpu", "seed": 4}
    config = resolve_run_config(overrides)
    torch.manual_seed(0)
    model = build_model("cnn", 10, 1, 8)
    strategy = build_strategy(config, parameter_shapes(model))
    grid = LocalGrid(client_app, num_nodes=3, run_config=config)
    result = strategy.start(grid=grid, initial_arrays=ArrayRecord(model.state_dict()), num_rounds=1)
    train = [r.content for r in grid.replies if r.metadata.message_type == "train"]
    train.sort(key=lambda content: content["metrics"]["partition-id"])  # the server's order
    replies = [TrainReply.from_record(content, "train") for content in train]
    assert all(reply.bits == 8 for reply in replies)
    weights = batch_weights([reply.weight for reply in replies])
    gradient = weighted_average([reply.update for reply in replies], weights)
    broadcast = encoded_broadcast(gradient, 8, seed=4, server_round=1)
    assert sum(t.num_bits for t in broadcast.values()) == strategy.settings.gradient_size_bits
    (record,) = strategy.records
    for name, value in model.state_dict().items():
        if name in broadcast:
            expected = value.numpy() - record.learning_rate * decode(broadcast[name])
            np.testing.assert_array_equal(record_views(result.arrays)[name], expected)
            assert not np.array_equal(
                expected, value.numpy() - record.learning_rate * gradient[name]
            )
