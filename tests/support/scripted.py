"""A scripted ClientApp, a stub policy and a FeelStrategy for them: strategy tests without torch."""

import numpy as np
from flwr.app import Array, ArrayRecord, Message
from flwr.clientapp import ClientApp

from scheduler import evaluate, optimal_downlink_slots, optimal_uplink_slots
from scheduler.channel import path_gain
from strategy import FeelStrategy, InstanceSettings
from task.protocol import (
    BATCH_SIZE,
    PARTITION_ID,
    TRAIN_GRADIENT,
    TRAIN_LOSS,
    ProfileReport,
    TrainInstruction,
    train_reply_record,
)

BATCHES = [2, 6]


class StubPolicy:
    """Fixed per-device batches with the optimal slots for them; records its instances."""

    name = "stub"

    def __init__(self):
        self.instances = []

    def allocate(self, instance, round_index=0):
        self.instances.append(instance)
        batches = np.array(BATCHES[: instance.num_devices])
        return evaluate(
            instance,
            batches,
            optimal_uplink_slots(instance, batches),
            optimal_downlink_slots(instance),
            policy=self.name,
        )


def scripted_client(fail_train_on=(), carries_profiles=True):
    """Partition i reports distance 50(i+1) m and gradient i+1; BN mean 10(i+1).

    A train reply carries the profile it is asked for, unless not ``carries_profiles``.
    """
    app = ClientApp()

    def report(context):
        pid = int(context.node_config["partition-id"])
        compute = {"cpu-hz": 1e9, "cycles-per-sample": 1e6, "update-cycles": 1e4}
        gain = float(path_gain(50.0 * (pid + 1)))
        count = int(context.node_config["num-partitions"])
        return ProfileReport(pid, 50, "cpu", gain, 1.0, 1.0, compute, count)

    @app.query("profile")
    def profile(msg, context):
        return Message(report(context).to_record(), reply_to=msg)

    @app.train()
    def train(msg, context):
        pid = int(context.node_config["partition-id"])
        if pid in fail_train_on:
            raise RuntimeError("device lost")
        task = TrainInstruction.from_record(msg.content)
        carried = task.profile_round is not None and carries_profiles
        content = train_reply_record(
            TRAIN_GRADIENT,
            {"w": np.full(2, pid + 1.0, np.float32)},
            {BATCH_SIZE: task.batch_size, TRAIN_LOSS: float(pid), PARTITION_ID: pid},
            buffers={
                "bn.running_mean": np.full(2, 10.0 * (pid + 1), np.float32),
                "bn.num_batches_tracked": np.array(1, np.int64),
            },
            profile=report(context).fields() if carried else None,
        )
        return Message(content, reply_to=msg)

    return app


def initial_arrays():
    return ArrayRecord(
        {
            "w": Array(np.zeros(2, np.float32)),
            "bn.running_mean": Array(np.zeros(2, np.float32)),
            "bn.num_batches_tracked": Array(np.array(0, np.int64)),
        }
    )


def make_strategy(policy=None, gradient_bits=32):
    return FeelStrategy(
        policy=policy or StubPolicy(),
        settings=InstanceSettings("cpu", gradient_size_bits=32e4),
        learning_rate=0.1,
        base_batch=2,
        gradient_bits=gradient_bits,
    )
