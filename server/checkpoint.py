"""Checkpoints after every round, and resuming a run from the last complete one.

``checkpoint.npz`` in the results directory holds everything a run needs to go on as if it
had never stopped: the global model, the strategy's state (simulated clock, the devices'
sampling cursors, the round records), the ``rounds.jsonl`` rows so far, the initial test
metrics, the wall time spent, the run config and the server's RNG states. The server update
is plain SGD (Eq. 2), which keeps no optimizer state. The devices keep none either: the
server sends each its sampling cursor, and every random draw of a device (fading,
quantization, dropout, injected faults) is keyed by (seed, partition, round).

The file is written to a temporary name and renamed over the old one, so a run killed at
any moment leaves the previous complete checkpoint; it is written before the round's row
is appended to ``rounds.jsonl``, and a resumed run rewrites ``rounds.jsonl`` from it.
"""

from __future__ import annotations

import json
import os
import random
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from task.errors import ConfigError

CHECKPOINT_FILE = "checkpoint.npz"
# Run-config keys that may differ between a run and its resumption.
RESUME_KEYS = ("resume", "results-dir", "tensorboard")
_MODEL = "model/"


@dataclass(frozen=True)
class Checkpoint:
    """A run's state after round ``round``.

    Attributes
    ----------
    round
        The last complete round.
    config
        The run config.
    model
        The global model's arrays after ``round``.
    strategy
        The loop's state after ``round`` (:meth:`strategy.TrainingState.to_dict`).
    rows
        The ``rounds.jsonl`` rows of rounds 1 to ``round``.
    initial
        Test metrics of the initial model.
    wall_time_s
        Wall-clock seconds the run has taken so far.
    rng
        Server RNG states (:func:`rng_state`).
    """

    round: int
    config: dict[str, Any]
    model: dict[str, np.ndarray]
    strategy: dict[str, Any]
    rows: list[dict[str, Any]]
    initial: dict[str, float]
    wall_time_s: float
    rng: dict[str, Any]


def rng_state() -> dict[str, Any]:
    """Return the states of Python's, numpy's and torch's global generators (JSON-ready)."""
    import torch

    _, keys, position, has_gauss, gauss = np.random.get_state()
    return {
        "python": random.getstate(),
        "numpy": [keys.tolist(), position, has_gauss, gauss],
        "torch": torch.get_rng_state().tolist(),
    }


def set_rng_state(state: Mapping[str, Any]) -> None:
    """Restore the generators from :func:`rng_state`."""
    import torch

    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    keys, position, has_gauss, gauss = state["numpy"]
    np.random.set_state(("MT19937", np.array(keys, dtype=np.uint32), position, has_gauss, gauss))
    torch.set_rng_state(torch.tensor(state["torch"], dtype=torch.uint8))


def save_checkpoint(directory: Path, checkpoint: Checkpoint) -> Path:
    """Write ``directory/checkpoint.npz`` atomically (temporary file, fsync, rename)."""
    path = Path(directory) / CHECKPOINT_FILE
    state = {
        key: getattr(checkpoint, key)
        for key in ("round", "config", "strategy", "rows", "initial", "wall_time_s", "rng")
    }
    arrays = {_MODEL + name: value for name, value in checkpoint.model.items()}
    temporary = path.with_name(path.name + ".tmp")
    with temporary.open("wb") as stream:
        np.savez(stream, state=np.frombuffer(json.dumps(state).encode(), np.uint8), **arrays)
        stream.flush()
        os.fsync(stream.fileno())
    os.replace(temporary, path)
    return path


def load_checkpoint(directory: Path) -> Checkpoint | None:
    """Read ``directory/checkpoint.npz``; None if the run has not finished a round."""
    path = Path(directory) / CHECKPOINT_FILE
    if not path.is_file():
        return None
    with np.load(path, allow_pickle=False) as archive:
        state = json.loads(archive["state"].tobytes())
        model = {key[len(_MODEL) :]: archive[key] for key in archive.files if key != "state"}
    return Checkpoint(model=model, **state)


def resume_point(directory: Path, config: Mapping[str, Any]) -> Checkpoint | None:
    """Return the checkpoint a run with ``config`` goes on from, or None for a fresh start.

    With run-config ``resume`` the checkpoint in ``directory`` (if any; checked with
    :func:`check_resumable`); without it an old run's checkpoint is deleted.
    """
    if config["resume"]:
        checkpoint = load_checkpoint(directory)
        if checkpoint is not None:
            check_resumable(checkpoint, config)
        return checkpoint
    (Path(directory) / CHECKPOINT_FILE).unlink(missing_ok=True)
    return None


def completed_rounds(directory: Path) -> int:
    """Return the last complete round checkpointed in ``directory`` (0 if none)."""
    checkpoint = load_checkpoint(directory)
    return checkpoint.round if checkpoint else 0


def check_resumable(checkpoint: Checkpoint, config: Mapping[str, Any]) -> None:
    """Check that ``config`` continues the run of ``checkpoint``.

    Raises
    ------
    ConfigError
        Naming the first run-config key that differs from the checkpoint's.
    """
    for key, value in config.items():
        if key not in RESUME_KEYS and checkpoint.config.get(key) != value:
            raise ConfigError(
                "resume",
                f"{key} is {value!r} but the checkpoint (round {checkpoint.round}) was "
                f"written with {checkpoint.config.get(key)!r}",
            )
