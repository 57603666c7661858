"""Fault injection (client.faults): seeded draws of every kind, each caught by the reply checks."""

import re
from collections import Counter

import numpy as np
import pytest
from flwr.app import Array, ArrayRecord, MetricRecord, RecordDict
from support.replies import MODEL, PARAMETERS, check, gpu_profile, profile

from client.faults import (
    PROFILE_FAULTS,
    TRAIN_FAULTS,
    InjectedFault,
    corrupt_profile,
    corrupt_train,
    draw_fault,
    inject_profile,
    inject_statistics,
    inject_train,
)
from scheduler.channel import path_gain
from strategy import InstanceSettings
from strategy.instance import ProfileBounds
from strategy.validation import check_profile
from task.codec import encode_arrays
from task.config import resolve_run_config
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
    config = resolve_run_config({"inject-faults": 0.0, "seed": 7})
    assert inject_train(update, metrics, config, 1) == (update, metrics)


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


@pytest.mark.security
def test_only_the_attacker_attacks_in_every_round_with_its_scaled_update():
    config = resolve_run_config({"attacker": 1, "attack-scale": 1e6})
    update, metrics = sound_reply()
    for server_round in (1, 2, 3):
        sent, same = inject_train(update, metrics, config, server_round)
        assert same == metrics and set(sent) == set(update)
        for name, value in sent.items():
            assert value.dtype == update[name].dtype
            assert np.array_equal(value, update[name] * np.float32(1e6))
    other = resolve_run_config({"attacker": 0})
    assert inject_train(update, metrics, other, 1) == (update, metrics)


@pytest.mark.security
def test_an_attackers_encoded_update_decodes_scaled():
    config = resolve_run_config({"attacker": 1, "attack-scale": 1e6})
    update, metrics = sound_reply()
    encoded = encode_arrays(update, 8, np.random.default_rng(0))
    sent, _ = inject_train(encoded, metrics, config, 1)
    for name, tensor in sent.items():
        assert np.array_equal(tensor.packed, encoded[name].packed)
        assert np.allclose(tensor.floats, encoded[name].floats * 1e6)


@pytest.mark.security
def test_a_lying_profile_passes_the_old_checks_and_fails_the_plausibility_bounds():
    config = resolve_run_config({"attacker": 1, "attack": "lying-profile"})
    lie = inject_profile(profile(), config, 1)
    assert lie["cpu-hz"] == 1e12 and lie["path-gain"] == 1.0
    assert inject_profile(profile(**{"partition-id": 2}), config, 1) == profile(
        **{"partition-id": 2}
    )
    with pytest.raises(ReplyError, match=r"implausible profile: path-gain 1.0 exceeds 5.1"):
        check_profile(lie, SETTINGS)
    without_bounds = InstanceSettings(
        "cpu",
        gradient_size_bits=32e4,
        bounds=ProfileBounds(max_cpu_hz=1e13, min_distance_m=1e-6, min_gpu_floor_s=0.0),
    )
    assert check_profile(lie, without_bounds).compute["cpu-hz"] == 1e12


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"cpu-hz": 3.5e9}, "cpu-hz 3500000000.0 exceeds 3e+09"),
        ({"fading-down": 51.0}, "fading-down 51.0 exceeds 50"),
        ({"path-gain": float(path_gain(9.0))}, "path-gain 7.62"),
        ({"path-gain": float(path_gain(2100.0))}, "path-gain 9.51"),
        ({"path-gain": 1e-300}, "path-gain 1e-300 is below 1.14"),
    ],
)
def test_each_cpu_profile_field_beyond_its_bound_is_excluded(changes, message):
    with pytest.raises(ReplyError, match=re.escape(f"implausible profile: {message}")):
        check_profile(profile(**changes), SETTINGS)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"latency-floor-s": 5e-5}, "latency-floor-s 5e-05 is below 0.0001"),
        ({"batch-threshold": 129.0}, "batch-threshold 129.0 exceeds 128"),
    ],
)
def test_each_gpu_profile_number_beyond_its_bound_is_excluded(changes, message):
    settings = InstanceSettings("gpu", gradient_size_bits=32e4)
    assert check_profile(gpu_profile(), settings)
    with pytest.raises(ReplyError, match=re.escape(f"implausible profile: {message}")):
        check_profile(gpu_profile(**changes), settings)


@pytest.mark.security
def test_a_huge_statistics_attacker_scales_its_batch_statistics_and_passes_the_reply_checks():
    config = resolve_run_config({"attacker": 1, "attack": "huge-statistics"})
    buffers = {
        "bn.running_mean": np.full(3, 0.5, np.float32),
        "bn.running_var": np.full(3, 1.5, np.float32),
        "bn.num_batches_tracked": np.array(4, np.int64),
    }
    sent = inject_statistics(buffers, config, 1)
    assert sent["bn.running_mean"] == pytest.approx(np.full(3, 0.5e30), rel=1e-6)
    assert sent["bn.running_var"] == pytest.approx(np.full(3, 1.5e30), rel=1e-6)
    assert sent["bn.num_batches_tracked"] == buffers["bn.num_batches_tracked"]
    assert inject_statistics(buffers, config, 2) is buffers
    update, metrics = sound_reply()
    assert inject_train(update, metrics, config, 1) == (update, metrics)
    content = train_reply_record(TRAIN_GRADIENT, update, metrics, sent)
    assert check(content).buffers["bn.running_mean"][0] == pytest.approx(0.5e30)
