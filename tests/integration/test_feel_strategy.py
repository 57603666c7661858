"""FeelStrategy against a scripted ClientApp: weights, learning rate, BN stats, clock."""

import numpy as np
import pytest
from flwr.app import ConfigRecord
from support.fake_grid import LocalGrid
from support.scripted import BATCHES, StubPolicy, initial_arrays, make_strategy, scripted_client

from scheduler import evaluate
from strategy import policy_for_scheme
from task.arrays import record_views


def test_one_round_weights_scales_and_averages():
    strategy = make_strategy()
    grid = LocalGrid(scripted_client(), num_nodes=2)
    result = strategy.start(grid=grid, initial_arrays=initial_arrays(), num_rounds=1)
    state = dict(record_views(result.arrays))
    gradient = (2 * 1.0 + 6 * 2.0) / 8  # Eq. (1): weights B_k / B
    learning_rate = 0.1 * np.sqrt(8 / 2)  # eta0 sqrt(B / B0)
    np.testing.assert_allclose(state["w"], -learning_rate * gradient, rtol=1e-6)
    np.testing.assert_allclose(state["bn.running_mean"], (2 * 10 + 6 * 20) / 8)
    assert int(state["bn.num_batches_tracked"]) == 1
    (record,) = strategy.records
    assert record.batch_sizes == BATCHES and record.global_batch == 8
    assert record.learning_rate == pytest.approx(learning_rate)
    assert record.train_loss == pytest.approx(6 / 8)
    assert result.train_metrics_clientapp[1]["global-batch"] == 8


def test_each_device_gets_its_own_batch_size_and_the_model():
    grid = LocalGrid(scripted_client(), num_nodes=2)
    make_strategy().start(grid=grid, initial_arrays=initial_arrays(), num_rounds=1)
    train = [m for m in grid.sent if m.metadata.message_type == "train"]
    sent = {grid.contexts[m.metadata.dst_node_id].node_config["partition-id"]: m for m in train}
    assert [int(sent[p].content["config"]["batch-size"]) for p in (0, 1)] == BATCHES
    assert all(int(m.content["config"]["gradient-bits"]) == 32 for m in train)
    assert all(int(m.content["config"]["server-round"]) == 1 for m in train)
    assert all(set(record_views(m.content["arrays"])) == set(initial_arrays()) for m in train)
    queries = [m for m in grid.sent if m.metadata.message_type == "query.profile"]
    assert len(queries) == 2


def test_devices_are_scheduled_in_partition_order_and_clock_adds_latencies():
    policy = StubPolicy()
    strategy = make_strategy(policy)
    grid = LocalGrid(scripted_client(), num_nodes=2)
    strategy.start(grid=grid, initial_arrays=initial_arrays(), num_rounds=2)
    rates = policy.instances[0].devices["uplink_rate_bps"]
    assert rates[0] > rates[1]  # partition 0 is nearer the base station
    latencies = [r.round_latency_s for r in strategy.records]
    assert [r.sim_time_s for r in strategy.records] == pytest.approx(np.cumsum(latencies))
    for r in strategy.records:
        split = r.compute_latency_s + r.uplink_latency_s + r.downlink_latency_s
        assert split == pytest.approx(r.round_latency_s)


def test_failed_device_is_left_out_of_the_average():
    strategy = make_strategy()
    grid = LocalGrid(scripted_client(fail_train_on={0}), num_nodes=2)
    result = strategy.start(grid=grid, initial_arrays=initial_arrays(), num_rounds=1)
    state = dict(record_views(result.arrays))
    np.testing.assert_allclose(state["w"], -0.1 * np.sqrt(6 / 2) * 2.0, rtol=1e-6)
    record = strategy.records[0]
    assert record.global_batch == 6
    assert record.participants == [1] and list(record.excluded) == ["0"]
    assert "error" in record.excluded["0"]
    # The round takes the latency of the device that took part, with its planned batch and slots.
    (instance,) = strategy.policy.instances
    planned = StubPolicy().allocate(instance)
    alone = evaluate(
        instance.subset([1]),
        planned.batch_sizes[[1]],
        planned.uplink_slots_s[[1]],
        planned.downlink_slots_s[[1]],
        policy="check",
    )
    assert record.round_latency_s == pytest.approx(alone.round_latency_s)
    assert record.round_latency_s <= planned.round_latency_s


def test_round_fails_when_no_device_returns_a_gradient():
    grid = LocalGrid(scripted_client(fail_train_on={0, 1}), num_nodes=2)
    with pytest.raises(RuntimeError, match=r"0 usable device\(s\), fewer than min-devices 1"):
        make_strategy().start(grid=grid, initial_arrays=initial_arrays(), num_rounds=1)


def test_scheme_proposed_is_the_optimal_policy():
    assert policy_for_scheme("proposed").name == "optimal"
    assert policy_for_scheme("full").name == "full"


def test_user_policy_by_import_path_runs_a_round():
    policy = policy_for_scheme("support.scripted:StubPolicy")
    strategy = make_strategy(policy)
    strategy.start(
        grid=LocalGrid(scripted_client(), 2), initial_arrays=initial_arrays(), num_rounds=1
    )
    assert strategy.records[0].policy == "stub" and len(policy.instances) == 1


class PushWatch(LocalGrid):
    """Logs each message as the strategy pushes it; ``asked``: the rounds whose profiles were
    asked for (in a train message or a query), ``queried``: those with a query."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.asked, self.queried = set(), set()
        self.pushed = []

    def push_messages(self, messages):
        taken = []
        for message in messages:  # a grid pushes each message as it takes it
            self.pushed.append((message.metadata.message_type, int(message.metadata.group_id)))
            if message.metadata.message_type == "query.profile":
                self.queried.add(int(message.metadata.group_id))
                self.asked.add(int(message.metadata.group_id))
            elif (ahead := message.content["config"].get("profile-round")) is not None:
                self.asked.add(ahead)
            taken.append(message)
        return super().push_messages(taken)


def watch_aggregation(strategy, grid):
    """Return, per round, whether the next round was asked for before its replies are applied."""
    ahead = {}
    apply = strategy._apply

    def watched(plan, updates):
        ahead[plan.server_round] = plan.server_round + 1 in grid.asked
        return apply(plan, updates)

    strategy._apply = watched
    return ahead


def test_next_rounds_profiles_come_in_this_rounds_train_replies():
    grid = PushWatch(scripted_client(), num_nodes=2)
    strategy = make_strategy()
    strategy.start(grid, initial_arrays(), num_rounds=3)
    assert grid.queried == {1}  # one exchange a round after the first
    train = [m for m in grid.sent if m.metadata.message_type == "train"]
    asked = [(int(m.metadata.group_id), m.content["config"].get("profile-round")) for m in train]
    assert sorted(asked, key=str) == [(1, 2), (1, 2), (2, 3), (2, 3), (3, None), (3, None)]
    assert [len(r.participants) for r in strategy.records] == [2, 2, 2]


def test_devices_whose_train_reply_lacks_the_profile_are_asked_for_it():
    grid = PushWatch(scripted_client(carries_profiles=False), num_nodes=2)
    strategy = make_strategy(StubPolicy())
    strategy.start(grid, initial_arrays(), num_rounds=3)
    assert grid.queried == {1, 2, 3}
    carried = make_strategy(StubPolicy())
    carried.start(PushWatch(scripted_client(), num_nodes=2), initial_arrays(), num_rounds=3)
    assert [r.to_dict() for r in strategy.records] == [r.to_dict() for r in carried.records]


class TwoPassWatch(PushWatch):
    """Goes through the messages once before pushing them, as Flower's HTTP grid does."""

    def push_messages(self, messages):
        assert len(list(messages)) == len(messages)
        return super().push_messages(messages)


def test_a_grid_may_go_through_the_train_messages_twice():
    grid = TwoPassWatch(scripted_client(), num_nodes=2)
    strategy = make_strategy()
    ahead = watch_aggregation(strategy, grid)
    strategy.start(grid, initial_arrays(), num_rounds=3)
    assert ahead == {1: True, 2: True, 3: False}
    assert grid.queried == {1}
    assert [grid.pushed.count(("train", r)) for r in (1, 2, 3)] == [2, 2, 2]
    assert [len(r.participants) for r in strategy.records] == [2, 2, 2]


def test_no_profiles_are_asked_for_a_round_past_the_time_budget():
    grid = PushWatch(scripted_client(), num_nodes=2)
    strategy = make_strategy()
    strategy.start(grid, initial_arrays(), num_rounds=1)
    latency = strategy.records[0].round_latency_s
    grid = PushWatch(scripted_client(), num_nodes=2)
    strategy = make_strategy()
    strategy.time_budget_s = 2.5 * latency  # round 3 reaches it (the fading is fixed)
    ahead = watch_aggregation(strategy, grid)
    result = strategy.start(grid, initial_arrays(), num_rounds=10)
    assert result.stopped.startswith("simulated time") and "reached the budget" in result.stopped
    assert ahead == {1: True, 2: True, 3: False}
    assert sorted(grid.asked) == [1, 2, 3]
    assert len(result.records) == 3 and result.sim_time_s == result.records[-1].sim_time_s


def test_flower_round_hooks_are_not_used_and_evaluation_is_centralized():
    strategy = make_strategy()
    grid = LocalGrid(scripted_client(), num_nodes=2)
    with pytest.raises(TypeError, match="start"):
        strategy.configure_train(1, initial_arrays(), ConfigRecord(), grid)
    assert list(strategy.configure_evaluate(1, initial_arrays(), ConfigRecord(), grid)) == []


def test_a_device_that_sends_other_bits_than_asked_is_left_out():
    strategy = make_strategy(gradient_bits=8)  # the scripted devices send float32 regardless
    grid = LocalGrid(scripted_client(), num_nodes=2)
    with pytest.raises(RuntimeError, match="sent 32 bits per element, but 8 were asked"):
        strategy.start(grid=grid, initial_arrays=initial_arrays(), num_rounds=1)
    sent = [m for m in grid.sent if m.metadata.message_type == "train"]
    assert all(int(m.content["config"]["gradient-bits"]) == 8 for m in sent)
