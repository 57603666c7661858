"""Reply validation: every kind of faulty profile or train reply is a clean ReplyError."""

import math

import numpy as np
import pytest
from flwr.app import Array, ArrayRecord, ConfigRecord, MetricRecord, RecordDict
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from support.replies import MODEL, PARAMETERS, check, profile

from strategy import InstanceSettings
from strategy.validation import (
    REASON_CHARS,
    check_profile,
    check_update,
    error_summary,
    exclude,
)
from task.arrays import PACKED, packed_array
from task.protocol import TRAIN_EPOCH, TRAIN_GRADIENT, ReplyError, TrainReply, encoded_records

SETTINGS = InstanceSettings("cpu", gradient_size_bits=32e4, min_batch=2)
BUFFERS = {k: MODEL[k] for k in ("bn.running_mean", "bn.running_var", "bn.num_batches_tracked")}
METRICS = MetricRecord({"batch-size": 8, "train-loss": 0.1})
ENCODING_EXTRA = ConfigRecord({"bits": 8, "w/shape": [2, 3], "payload": "x"})


def reply(grads=None, buffers=None, **metrics):
    grads = {k: MODEL[k] + 1 for k in PARAMETERS} if grads is None else grads
    buffers = BUFFERS if buffers is None else buffers
    metrics = {"batch-size": 8, "train-loss": 0.5, "partition-id": 1, **metrics}
    return RecordDict(
        {
            "grads": ArrayRecord({k: Array(v) for k, v in grads.items()}),
            "buffers": ArrayRecord({k: Array(v) for k, v in buffers.items()}),
            "metrics": MetricRecord({k: v for k, v in metrics.items() if v is not None}),
        }
    )


def test_sound_profile_and_reply_pass():
    check_profile(profile(), SETTINGS)
    update = check(reply())
    assert update.weight == 8 and update.train_loss == 0.5
    assert set(update.update) == set(PARAMETERS) and set(update.buffers) == set(BUFFERS)
    np.testing.assert_array_equal(update.update["w"], np.ones((2, 3), np.float32))


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"cpu-hz": -1.0}, "profile 'cpu-hz' is negative: -1.0"),
        ({"fading-up": -0.5}, "profile 'fading-up' is negative"),
        ({"num-examples": -360.0}, "profile 'num-examples' is negative"),
        ({"path-gain": math.nan}, "profile 'path-gain' is not finite: nan"),
        ({"cycles-per-sample": math.inf}, "profile 'cycles-per-sample' is not finite: inf"),
        ({"update-cycles": None}, "profile lacks 'update-cycles'"),
        ({"cpu-hz": "fast"}, "profile 'cpu-hz' is not a number: 'fast'"),
        ({"cpu-hz": True}, "profile 'cpu-hz' is not a number: True"),
        ({"num-examples": 7.5}, "profile 'num-examples' is not a whole number: 7.5"),
        ({"num-examples": 1}, "holds 1 examples, fewer than min-batch 2"),
        ({"cpu-hz": 0.0}, "profile: devices[0].cpu_hz: must be > 0"),
        ({"path-gain": 0.0}, "implausible profile: path-gain 0.0 is below 1.14321e-14"),
        ({"scenario": "gpu"}, "profile scenario 'gpu' but the run uses 'cpu'"),
        ({"exec": "rm -rf /", "zz": 1.0}, "profile has unknown key 'exec'"),
        ({"latency-floor-s": 1e-3}, "profile has unknown key 'latency-floor-s'"),
    ],
)
def test_bad_profile_is_rejected_with_the_key_and_value(changes, reason):
    with pytest.raises(ReplyError) as info:
        check_profile(profile(**changes), SETTINGS)
    assert reason in str(info.value)


# Replies that do not decode: TrainReply.from_record raises.
DECODE_FAULTS = [
    (reply(**{"batch-size": None}), "metrics lack 'batch-size'"),
    (reply(**{"train-loss": math.nan}), "metric 'train-loss' is not a finite number: nan"),
    (RecordDict({"metrics": METRICS}), "reply lacks 'grads'"),
    (RecordDict({"grads": ArrayRecord()}), "reply lacks 'metrics'"),
    (
        RecordDict({"grads": ConfigRecord({"w": 1}), "metrics": METRICS}),
        "reply 'grads' is a ConfigRecord, not a ArrayRecord",
    ),
    (
        RecordDict({**reply(), "exec": ConfigRecord({"cmd": "rm -rf /"})}),
        "reply has unexpected records ['exec']",
    ),
    (
        RecordDict({**reply(), "encoded": ArrayRecord(), "encoding": ConfigRecord({"bits": 8})}),
        "reply has both 'grads' and 'encoded'",
    ),
    (reply(**{"secret": 1.0, "z": 2}), "metrics has unknown key 'secret'"),
    (reply(**{"num-examples": 8}), "metrics has unknown key 'num-examples'"),
    (
        RecordDict({**reply(), "placement": ConfigRecord({"place": "h", "note": "x" * 999})}),
        "placement has unknown key 'note'",
    ),
    (
        RecordDict({"metrics": METRICS, **encoded_records({}), "encoding": ENCODING_EXTRA}),
        "encoding has unknown key 'payload'",
    ),
]
# Replies that decode but do not fit the model or the assignment: check_update raises.
CHECK_FAULTS = [
    (reply(**{"batch-size": 9}), "batch-size 9, but 8 was assigned"),
    (reply(grads={"w": MODEL["w"]}), "grads lacks 'b'"),
    (reply(grads={"w": np.zeros(6, np.float32), "b": MODEL["b"]}), "shape (6,), expected"),
    (reply(grads={"w": np.zeros((2, 3)), "b": MODEL["b"]}), "dtype float64, expected float32"),
    (
        reply(grads={"w": np.full((2, 3), np.nan, np.float32), "b": MODEL["b"]}),
        "grads 'w' holds NaN or inf values",
    ),
    (
        reply(grads={"w": MODEL["w"], "b": np.array([0, np.inf, 0], np.float32)}),
        "grads 'b' holds NaN or inf values",
    ),
    (reply(grads={**dict.fromkeys(PARAMETERS, MODEL["b"]), "x": MODEL["b"]}), "shape"),
    (
        reply(grads={"w": MODEL["w"], "b": MODEL["b"], "z": MODEL["b"]}),
        "grads has unknown array 'z'",
    ),
    (
        reply(buffers={**BUFFERS, "b": MODEL["b"]}),
        "'b' is in both grads and buffers",
    ),
    (
        reply(buffers={**BUFFERS, "bn.running_var": np.array([1, -0.5, 1], np.float32)}),
        "buffers 'bn.running_var' holds a negative variance",
    ),
]


@pytest.mark.parametrize(("content", "reason"), DECODE_FAULTS + CHECK_FAULTS)
def test_faulty_train_reply_is_rejected_with_the_reason(content, reason):
    with pytest.raises(ReplyError) as info:
        check(content)
    assert reason in str(info.value)


@pytest.mark.parametrize(("content", "reason"), DECODE_FAULTS)
def test_reply_that_does_not_decode_is_rejected_by_from_record(content, reason):
    with pytest.raises(ReplyError) as info:
        TrainReply.from_record(content, TRAIN_GRADIENT)
    assert reason in str(info.value)


@pytest.mark.parametrize(("content", "reason"), CHECK_FAULTS)
def test_decoded_reply_that_does_not_fit_is_rejected_by_check_update(content, reason):
    decoded = TrainReply.from_record(content, TRAIN_GRADIENT)
    with pytest.raises(ReplyError) as info:
        check_update(decoded, MODEL, 8, TRAIN_GRADIENT)
    assert reason in str(info.value)


def test_decoding_is_checked_before_the_assignment():
    """A reply that does not decode gives the decoding reason, whatever was assigned."""
    with pytest.raises(ReplyError, match="metric 'train-loss' is not a finite number"):
        check(reply(**{"batch-size": 9, "train-loss": math.inf}))


def test_array_that_does_not_decode_is_rejected():
    content = reply()
    content["grads"]["w"] = Array(dtype="float32", shape=(2, 3), stype="numpy.ndarray", data=b"x")
    with pytest.raises(ReplyError, match="grads 'w' does not decode"):
        TrainReply.from_record(content, TRAIN_GRADIENT)
    with pytest.raises(ReplyError, match="grads 'w' does not decode"):
        check(content)


def test_packed_update_that_gives_a_tensor_twice_or_many_values_is_rejected():
    content = reply()
    content["grads"][PACKED] = packed_array({"w": np.zeros((2, 3), np.float32)})
    with pytest.raises(ReplyError, match="grads gives 'w' twice"):
        check(content)
    content = reply()
    content["grads"][PACKED] = Array(np.zeros(2, [("b", "<f4", (3,))]))
    with pytest.raises(ReplyError, match=r"grads 'packed' does not decode: .* one value"):
        check(content)


def test_model_update_without_buffers_passes():
    arrays = {k: np.asarray(v + 1) for k, v in MODEL.items()}
    content = RecordDict(
        {
            "arrays": ArrayRecord({k: Array(v) for k, v in arrays.items()}),
            "metrics": MetricRecord({"num-examples": 50, "train-loss": 0.2}),
        }
    )
    update = check(content, 50, TRAIN_EPOCH)
    assert update.weight == 50 and update.train_loss == 0.2
    assert set(update.update) == set(MODEL) and update.buffers == {}
    with pytest.raises(ReplyError, match="num-examples 50, but 49 was assigned"):
        check(content, 49, TRAIN_EPOCH)


def test_error_summary_keeps_the_message_of_a_ray_traceback():
    ray = (
        "<class 'ray.exceptions.RayTaskError(ClientAppException)'>:<'ray::ClientAppActor.run() "
        '(pid=30878, actor_id=e7168)\n  File "/tmp/feel-flwr-z4/app.py", line 69\n'
        "Exception ClientAppException occurred. Message: injected fault: on partition 0'>"
    )
    assert error_summary(ray) == "injected fault: on partition 0"
    assert error_summary("RuntimeError('device lost')") == "RuntimeError('device lost')"


# --- fuzzing: random, malformed replies give a ReplyError or a valid update, never a crash ---

NUMBERS = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(-(2**40), 2**40),
    st.booleans(),
    st.text(max_size=3),
    st.lists(st.floats(), max_size=2),
)
PROFILE_KEYS = list(profile())


def maybe(strategy):
    """``strategy``, or (as often) no change at all: sound replies are drawn too."""
    return st.one_of(strategy.map(lambda v: type(v)()), strategy)


@settings(max_examples=300, deadline=None)
@given(
    maybe(st.dictionaries(st.sampled_from(PROFILE_KEYS), NUMBERS, max_size=len(PROFILE_KEYS))),
    maybe(st.sets(st.sampled_from(PROFILE_KEYS), max_size=3)),
)
def test_fuzzed_profile_is_accepted_only_when_sound(changes, dropped):
    report = {k: v for k, v in {**profile(), **changes}.items() if k not in dropped}
    try:
        check_profile(report, SETTINGS)
    except ReplyError:
        return
    numbers = [v for k, v in report.items() if k != "scenario"]
    assert all(isinstance(v, int | float) and math.isfinite(v) and v >= 0 for v in numbers)
    assert report["num-examples"] >= SETTINGS.min_batch


ARRAYS = st.one_of(
    hnp.arrays(
        st.sampled_from([np.float32, np.float64, np.int64, np.bool_]),
        hnp.array_shapes(min_dims=0, max_dims=2, max_side=3),
    ),
    st.sampled_from(
        [MODEL["w"], MODEL["b"], MODEL["bn.running_mean"], MODEL["bn.num_batches_tracked"]]
    ),
    st.sampled_from([np.full((2, 3), np.nan, np.float32), np.array([1, np.inf, 0], np.float32)]),
)
NAMES = st.sampled_from([*MODEL, "other"])


RECORDS = ("grads", "buffers", "metrics")


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    grads=maybe(st.dictionaries(NAMES, ARRAYS, max_size=3)),
    buffers=maybe(st.dictionaries(NAMES, ARRAYS, max_size=2)),
    metrics=maybe(st.dictionaries(st.sampled_from(["batch-size", "train-loss"]), NUMBERS)),
    dropped=maybe(st.sets(st.sampled_from([*MODEL, "batch-size", "train-loss", *RECORDS]))),
    assigned=st.sampled_from([8, 8, 7]),
)
def test_fuzzed_train_reply_is_accepted_only_when_sound(grads, buffers, metrics, dropped, assigned):
    """A sound reply with random arrays and metrics replaced, added or dropped."""
    parts = {
        "grads": {k: MODEL[k] + 1 for k in PARAMETERS} | grads,
        "buffers": BUFFERS | buffers,
        "metrics": {"batch-size": 8, "train-loss": 0.5} | metrics,
    }
    parts = {
        key: {k: v for k, v in part.items() if k not in dropped} for key, part in parts.items()
    }
    records = {
        "metrics": MetricRecord(
            {k: v for k, v in parts["metrics"].items() if not isinstance(v, str | bool)}
        ),
        "grads": ArrayRecord({k: Array(np.asarray(v)) for k, v in parts["grads"].items()}),
        "buffers": ArrayRecord({k: Array(np.asarray(v)) for k, v in parts["buffers"].items()}),
    }
    try:
        update = check(RecordDict({k: v for k, v in records.items() if k not in dropped}), assigned)
    except ReplyError:
        return
    assert update.weight == assigned and math.isfinite(update.train_loss)
    received = {**update.update, **update.buffers}
    assert set(received) == set(MODEL) and not set(update.update) & set(update.buffers)
    for name, array in received.items():
        assert array.shape == MODEL[name].shape and array.dtype == MODEL[name].dtype
        assert np.all(np.isfinite(array))


@pytest.mark.security
def test_a_devices_error_text_is_kept_on_one_bounded_line():
    excluded = {}
    exclude(excluded, "3", 1003, "boom\n" + "\x1b[31m" + "x" * 1_000_000)
    reason = excluded["3"]
    assert reason.startswith("boom\\n\\x1b[31mxxx") and len(reason) == REASON_CHARS
    assert reason.isprintable() and reason.endswith("…")
    exclude(excluded, "4", 1004, "short and plain")
    assert excluded["4"] == "short and plain"
