"""A model, a sound profile report and the train-reply check, as the strategy applies them."""

import numpy as np

from scheduler.channel import path_gain
from strategy.validation import check_update
from task.protocol import TRAIN_GRADIENT, TrainReply

MODEL = {
    "w": np.zeros((2, 3), np.float32),
    "b": np.zeros(3, np.float32),
    "bn.running_mean": np.zeros(3, np.float32),
    "bn.running_var": np.ones(3, np.float32),
    "bn.num_batches_tracked": np.array(0, np.int64),
}


PARAMETERS = ("w", "b")


def profile(**changes):
    report = {
        "partition-id": 1,
        "num-partitions": 4,
        "num-examples": 50,
        "scenario": "cpu",
        "path-gain": float(path_gain(100.0)),
        "fading-up": 1.0,
        "fading-down": 0.5,
        "cpu-hz": 1e9,
        "cycles-per-sample": 1e6,
        "update-cycles": 1e4,
    }
    report.update(changes)
    return {k: v for k, v in report.items() if v is not None}


GPU_COMPUTE = {
    "latency-floor-s": 1e-3,
    "latency-slope-s": 1e-4,
    "batch-threshold": 16.0,
    "update-s": 1e-4,
}


def gpu_profile(**changes):
    """A sound GPU report: :func:`profile`'s with the GPU compute fields for the CPU's."""
    cpu = dict.fromkeys(("cpu-hz", "cycles-per-sample", "update-cycles"))
    return profile(**{"scenario": "gpu", **cpu, **GPU_COMPUTE, **changes})


def check(content, assigned=8, message_type=TRAIN_GRADIENT):
    """Decode a train reply and check it against MODEL, as the strategy does."""
    reply = TrainReply.from_record(content, message_type)
    check_update(reply, MODEL, assigned, message_type)
    return reply
