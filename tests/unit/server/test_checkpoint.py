"""Checkpoints (server.checkpoint): atomic writes, RNG states, the resume point."""

import json
import random

import numpy as np
import pytest
import torch

from server import checkpoint as ckpt
from task.errors import ConfigError


def a_checkpoint(round_=1, **changes):
    fields = {
        "round": round_,
        "config": {"seed": 1, "resume": False, "results-dir": "/a"},
        "model": {"w": np.arange(6, dtype=np.float32).reshape(2, 3), "n": np.array(3)},
        "strategy": {"sim_time_s": 0.25, "cursors": {"0": 5}, "records": []},
        "rows": [{"round": 1, "x": 0.1}],
        "initial": {"test_loss": 2.3},
        "wall_time_s": 12.5,
        "rng": ckpt.rng_state(),
    }
    return ckpt.Checkpoint(**{**fields, **changes})


def test_checkpoint_round_trips_and_replaces_atomically(tmp_path, monkeypatch):
    assert ckpt.load_checkpoint(tmp_path) is None and ckpt.completed_rounds(tmp_path) == 0
    ckpt.save_checkpoint(tmp_path, a_checkpoint(1))
    ckpt.save_checkpoint(tmp_path, a_checkpoint(2))
    loaded = ckpt.load_checkpoint(tmp_path)
    assert loaded.round == 2 and loaded.rows == [{"round": 1, "x": 0.1}]
    assert loaded.strategy == a_checkpoint().strategy and loaded.wall_time_s == 12.5
    np.testing.assert_array_equal(loaded.model["w"], a_checkpoint().model["w"])
    assert loaded.model["w"].dtype == np.float32 and list(loaded.model) == ["w", "n"]
    assert [p.name for p in tmp_path.iterdir()] == [ckpt.CHECKPOINT_FILE]

    def killed_while_writing(stream, **arrays):
        stream.write(b"PK\x03\x04 half a zip")
        raise KeyboardInterrupt

    monkeypatch.setattr(np, "savez", killed_while_writing)
    with pytest.raises(KeyboardInterrupt):
        ckpt.save_checkpoint(tmp_path, a_checkpoint(3))
    assert ckpt.completed_rounds(tmp_path) == 2  # the last complete checkpoint survives


def test_rng_states_are_restored():
    state = ckpt.rng_state()
    first = (random.random(), np.random.random(), torch.rand(1).item())
    ckpt.set_rng_state(json.loads(json.dumps(state)))
    assert (random.random(), np.random.random(), torch.rand(1).item()) == first


def test_resume_refuses_a_changed_config_and_a_fresh_run_drops_the_old_checkpoint(tmp_path):
    ckpt.save_checkpoint(tmp_path, a_checkpoint())
    changed = {"seed": 2, "resume": True, "results-dir": "/b"}
    with pytest.raises(ConfigError, match=r"seed is 2 but the checkpoint .* written with 1"):
        ckpt.resume_point(tmp_path, changed)
    same = {"seed": 1, "resume": True, "results-dir": "/b"}
    assert ckpt.resume_point(tmp_path, same).round == 1
    assert ckpt.resume_point(tmp_path, {**same, "resume": False}) is None
    assert ckpt.load_checkpoint(tmp_path) is None
