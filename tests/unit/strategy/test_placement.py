"""Where a device ran (a train reply's ``placement``): kept bounded, never trusted."""

from types import SimpleNamespace

import numpy as np
import pytest
from flwr.app import Array, ArrayRecord, ConfigRecord, MetricRecord
from support.replies import MODEL, PARAMETERS

from scheduler import Instance, get_policy
from strategy import InstanceSettings, build_instance
from strategy.replies import usable_updates
from strategy.rounds import RoundPlan
from task.protocol import (
    PLACE_CHARS,
    TRAIN_GRADIENT,
    UNKNOWN_PLACE,
    ProfileReport,
    reply_place,
    train_reply_record,
)

GRADS = {k: np.ones_like(MODEL[k]) for k in PARAMETERS}
BUFFERS = {k: v for k, v in MODEL.items() if k not in PARAMETERS}
METRICS = {"batch-size": 8, "train-loss": 0.5}


def with_placement(record):
    content = train_reply_record(TRAIN_GRADIENT, GRADS, METRICS)
    if record is not None:
        content["placement"] = record
    return content


def test_a_reply_names_its_place():
    content = train_reply_record(TRAIN_GRADIENT, GRADS, METRICS, place="node-a")
    assert reply_place(content) == "node-a"


@pytest.mark.parametrize(
    ("record", "expected"),
    [
        (None, UNKNOWN_PLACE),
        (ConfigRecord({"place": ""}), UNKNOWN_PLACE),
        (ConfigRecord({"place": 7}), UNKNOWN_PLACE),
        (ConfigRecord({"place": ["a", "b"]}), UNKNOWN_PLACE),
        (ConfigRecord({"place": b"host"}), UNKNOWN_PLACE),
        (ConfigRecord({"place": "evil\nrow"}), UNKNOWN_PLACE),
        (ConfigRecord({"other": "host"}), UNKNOWN_PLACE),
        (MetricRecord({"place": 1.0}), UNKNOWN_PLACE),
        (ArrayRecord({"place": Array(np.zeros(2))}), UNKNOWN_PLACE),
        (ConfigRecord({"place": "h" * 10_000}), "h" * PLACE_CHARS),
    ],
)
def test_a_missing_or_bad_place_is_unknown_and_a_long_one_is_cut(record, expected):
    assert reply_place(with_placement(record)) == expected


def test_the_round_keeps_each_devices_place_and_its_update():
    compute = {"cpu-hz": 1e9, "cycles-per-sample": 1e6, "update-cycles": 1e4}
    reports = [ProfileReport(pid, 20, "cpu", 1e-9, 1.0, 1.0, compute, 2) for pid in (0, 1)]
    settings = InstanceSettings("cpu", gradient_size_bits=1e4, min_batch=1, max_batch=10)
    instance = Instance.from_dict(build_instance(reports, settings))
    allocation = get_policy("full").allocate(instance)
    arrays = ArrayRecord({k: Array(v) for k, v in MODEL.items()})
    plan = RoundPlan(1, [11, 12], [0, 1], {}, instance, allocation, arrays)
    places = {11: "n" * 100, 12: None}

    def reply(node_id, batch):
        metrics = {**METRICS, "batch-size": int(batch)}
        content = train_reply_record(TRAIN_GRADIENT, GRADS, metrics, BUFFERS, place=places[node_id])
        return SimpleNamespace(content=content, has_error=lambda: False)  # what is read of it

    replies = {n: reply(n, b) for n, b in zip(plan.node_ids, allocation.batch_sizes, strict=True)}
    updates, excluded = usable_updates(plan, replies, TRAIN_GRADIENT, 32)
    assert excluded == {} and [u.place for u in updates] == ["n" * PLACE_CHARS, UNKNOWN_PLACE]
