"""Model-based FEEL, individual learning and the time budget against a scripted ClientApp."""

import math
from dataclasses import replace

import numpy as np
import pytest
from flwr.app import Array, ArrayRecord, ConfigRecord, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp
from support.fake_grid import LocalGrid
from support.scripted import initial_arrays
from support.scripted import scripted_client as gradient_client

from client.fleet import CpuProfile, Device, profile_record
from scheduler import get_policy
from scheduler.channel import ChannelParams, average_rate_bps, path_gain
from strategy import FeelStrategy, IndividualStrategy, InstanceSettings, ModelFeelStrategy
from task.arrays import record_views

EXAMPLES = [20, 35]  # N_k of partitions 0 and 1
CPU_HZ, CYCLES, UPDATE = 1e9, 1e6, 1e4
GRADIENT_BITS = 32e4
LOCAL_BATCH = 10
# Epoch training loss of each partition per round: 0 is flat from the start, 1 improves 3 times.
LOSSES = {0: [1.0] * 10, 1: [2.0, 1.5, 1.0, 0.5] + [0.5] * 6}


def scripted_client():
    """Partition i: N_i examples; an epoch adds i + 1 to ``w``, sent as the change with bits."""
    app = ClientApp()

    @app.query("profile")
    def profile(msg, context):
        pid = int(context.node_config["partition-id"])
        device = Device(pid, path_gain(50.0 * (pid + 1)), None, CpuProfile(CPU_HZ, CYCLES, UPDATE))
        report = profile_record(device, 1, EXAMPLES[pid], seed=0, num_partitions=len(EXAMPLES))
        return Message(RecordDict({"profile": ConfigRecord(report)}), reply_to=msg)

    @app.train("epoch")
    def epoch(msg, context):
        pid = int(context.node_config["partition-id"])
        received = dict(record_views(msg.content["arrays"]))
        state = dict(received)
        state["w"] = state["w"] + np.float32(pid + 1)
        state["bn.num_batches_tracked"] = np.asarray(state["bn.num_batches_tracked"] + 1)
        if "model-bits" in msg.content["config"]:
            state = {k: np.asarray(v - received[k]) for k, v in state.items()}
        server_round = int(msg.content["config"]["server-round"])
        metrics = {"num-examples": EXAMPLES[pid], "train-loss": LOSSES[pid][server_round - 1],
                   "partition-id": pid}  # fmt: skip
        content = {
            "arrays": ArrayRecord({k: Array(v) for k, v in state.items()}),
            "metrics": MetricRecord(metrics),
        }
        return Message(RecordDict(content), reply_to=msg)

    return app


def settings():
    return InstanceSettings("cpu", gradient_size_bits=GRADIENT_BITS)


def epoch_s(pid):
    """CPU epoch: N C / f plus one update M / f per local step."""
    n = EXAMPLES[pid]
    return (n * CYCLES + math.ceil(n / LOCAL_BATCH) * UPDATE) / CPU_HZ


def airtime_s(pid):
    """Upload or download time of the whole model over the full frame, s / R_k."""
    return GRADIENT_BITS / float(average_rate_bps(path_gain(50.0 * (pid + 1)), ChannelParams()))


def model_feel(**options):
    return ModelFeelStrategy(settings(), 0.1, 40, LOCAL_BATCH, **options)


def test_model_feel_averages_models_by_data_size_and_charges_epoch_and_exchange():
    strategy = model_feel()
    grid = LocalGrid(scripted_client(), num_nodes=2)
    result = strategy.start(grid=grid, initial_arrays=initial_arrays(), num_rounds=1)
    state = dict(record_views(result.arrays))
    np.testing.assert_allclose(state["w"], (20 * 1 + 35 * 2) / 55)  # FedAvg weights n_k / n
    assert int(state["bn.num_batches_tracked"]) == 1
    (record,) = strategy.records
    assert record.global_batch == 55 and record.batch_sizes == EXAMPLES
    assert record.learning_rate == pytest.approx(0.1 * np.sqrt(LOCAL_BATCH / 40))
    assert record.train_loss == pytest.approx((20 * 1.0 + 35 * 2.0) / 55)
    # Min-max slots: every upload ends at the same T with sum_k airtime_k / (T - ready_k) = 1.
    upload_end = record.compute_latency_s + record.uplink_latency_s
    fill = sum(airtime_s(p) / (upload_end - epoch_s(p)) for p in (0, 1))
    assert fill == pytest.approx(1.0)
    download = sum(airtime_s(p) for p in (0, 1))  # nothing follows: the frame split in turn
    assert record.round_latency_s == pytest.approx(upload_end + download)
    train = [m for m in grid.sent if m.metadata.message_type.startswith("train")]
    assert {m.metadata.message_type for m in train} == {"train.epoch"}
    config = train[0].content["config"]
    assert int(config["local-batch"]) == LOCAL_BATCH
    assert float(config["learning-rate"]) == pytest.approx(record.learning_rate)


def test_individual_devices_stop_after_patience_then_one_exchange():
    strategy = IndividualStrategy(
        settings(), 0.1, 40, LOCAL_BATCH, patience=2, min_delta=0.1, max_rounds=10
    )
    grid = LocalGrid(scripted_client(), num_nodes=2)
    seen = []
    result = strategy.start(
        grid=grid,
        initial_arrays=initial_arrays(),
        num_rounds=10,
        evaluate_fn=lambda rnd, arrays: seen.append(float(record_views(arrays)["w"][0])),
    )
    assert result.stopped == "individual learning made its exchange"
    rounds = [r.participants for r in strategy.records]
    # Partition 0 never beats its first loss by 0.1: it stops after rounds 2 and 3.
    # Partition 1 improves until round 4, then stops after rounds 5 and 6: the exchange.
    assert rounds == [[0, 1], [0, 1], [0, 1], [1], [1], [0, 1]]
    assert seen[:-1] == [0.0] * 6  # the global model is the initial one until the exchange
    assert seen[-1] == pytest.approx((20 * 3 * 1 + 35 * 6 * 2) / 55)
    sent = [m for m in grid.sent if m.metadata.message_type == "train.epoch"]
    to_1 = [float(record_views(m.content["arrays"])["w"][0]) for m in sent
            if grid.contexts[m.metadata.dst_node_id].node_config["partition-id"] == 1]  # fmt: skip
    assert to_1 == [0.0, 2.0, 4.0, 6.0, 8.0, 10.0]  # each epoch continues its own model
    # Clock: the slowest device's cumulative compute, then one exchange at the end.
    busy = [max(min(n, 3) * epoch_s(0), n * epoch_s(1)) for n in range(1, 7)]
    assert [r.sim_time_s for r in strategy.records[:5]] == pytest.approx(busy[:5])
    last = strategy.records[-1]
    assert last.compute_latency_s == pytest.approx(busy[5] - busy[4])
    assert last.uplink_latency_s == pytest.approx(airtime_s(0) + airtime_s(1))
    assert last.sim_time_s == pytest.approx(busy[5] + 2 * (airtime_s(0) + airtime_s(1)))
    assert [r.uplink_latency_s for r in strategy.records[:5]] == [0.0] * 5


def test_individual_exchanges_at_the_last_round_even_if_still_improving():
    strategy = IndividualStrategy(
        settings(), 0.1, 40, LOCAL_BATCH, patience=5, min_delta=0.0, max_rounds=2
    )
    result = strategy.start(
        grid=LocalGrid(scripted_client(), 2), initial_arrays=initial_arrays(), num_rounds=2
    )
    assert strategy.finished and strategy.records[-1].uplink_latency_s > 0
    assert float(record_views(result.arrays)["w"][0]) == pytest.approx((20 * 2 + 35 * 4) / 55)


def test_time_budget_stops_before_the_round_that_would_start_after_it():
    strategy = FeelStrategy(get_policy("full"), settings(), 0.1, 40, time_budget_s=0.3)
    result = strategy.start(
        grid=LocalGrid(gradient_client(), 2), initial_arrays=initial_arrays(), num_rounds=99
    )
    assert "reached the budget" in result.stopped
    times = [r.sim_time_s for r in strategy.records]
    assert len(times) > 2 and times[-1] >= 0.3 > times[-2]


def test_batches_are_capped_at_the_smallest_local_dataset():
    strategy = FeelStrategy(get_policy("full"), replace(settings(), max_batch=60), 0.1, 40)
    strategy.start(grid=LocalGrid(gradient_client(), 2), initial_arrays=initial_arrays(),
                   num_rounds=1)  # fmt: skip
    assert strategy.records[0].batch_sizes == [50, 50]  # each holds 50 examples
