"""Fault injection (client.faults): seeded draws of every kind, each caught by the reply checks."""

from collections import Counter

import numpy as np
import pytest
from flwr.app import Array, ArrayRecord, MetricRecord, RecordDict
from support.replies import MODEL, PARAMETERS, check, profile

from client.faults import (
    PROFILE_FAULTS,
    TRAIN_FAULTS,
    InjectedFault,
    corrupt_profile,
    corrupt_train,
    draw_fault,
    inject_train,
)
from strategy import InstanceSettings
from strategy.validation import check_profile
from task.codec import encode_arrays
from task.protocol import TRAIN_GRADIENT, ReplyError, train_reply_record

SETTINGS = InstanceSettings("cpu", gradient_size_bits=32e4)


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


@pytest.mark.parametrize("kind", ["missing-key", "wrong-shape", "wrong-dtype", "nan", "inf"])
@pytest.mark.parametrize("draw", range(5))
def test_each_fault_of_an_encoded_update_is_caught_naming_what_it_hit(kind, draw):
    update, metrics = sound_reply()
    encoded = encode_arrays(update, 8, np.random.default_rng(0))
    corrupt, metrics = corrupt_train(kind, encoded, metrics, np.random.default_rng(draw))
    buffers = {k: v for k, v in MODEL.items() if k not in PARAMETERS}
    content = train_reply_record(TRAIN_GRADIENT, corrupt, metrics, buffers)
    hit = "'(w|b|batch-size|train-loss)'" if kind == "missing-key" else "'(w|b)'"
    reason = {"wrong-shape": "does not decode", "wrong-dtype": "does not decode"}
    with pytest.raises(ReplyError, match=f"{hit}.*{reason.get(kind, '')}"):
        check(content, assigned=8)
