"""Model files of ``feel pretrain``: the weights and what they were trained on.

A file holds the ``state_dict`` and the facts a run checks before it starts from it
(run-config ``initial-model``): the model and dataset names, the held-out slice it was
trained on (``holdout-examples``), and its test accuracy. Saved with ``torch.save`` and
read with ``weights_only=True``, so a file cannot run code.
"""

from __future__ import annotations

import hashlib
import pickle
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from task.errors import ConfigError


@dataclass(frozen=True)
class PretrainedFacts:
    """What a pre-trained model is (the run config's names) and how good it is."""

    model: str
    dataset: str
    holdout_examples: int
    epochs: int
    test_accuracy: float
    test_loss: float


def save_model(path: Path, state: Mapping[str, torch.Tensor], facts: PretrainedFacts) -> str:
    """Write ``state`` and ``facts`` to ``path``; return the file's SHA-256."""
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"state_dict": dict(state), "facts": asdict(facts)}, path)
    return file_sha256(path)


def file_sha256(path: Path) -> str:
    """Return the hex SHA-256 of the file at ``path``."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def load_model(
    path: str, config: Mapping[str, Any]
) -> tuple[dict[str, torch.Tensor], PretrainedFacts]:
    """Read a model file and check it fits the run ``config``.

    Raises
    ------
    ConfigError
        Field ``initial-model``: the file is missing or unreadable, or its model, dataset
        or held-out slice differ from the run config's.
    """
    file = Path(path).expanduser()
    try:
        content = torch.load(file, map_location="cpu", weights_only=True)
        facts = PretrainedFacts(**content["facts"])
        state = dict(content["state_dict"])
    except (OSError, RuntimeError, KeyError, TypeError, ValueError, pickle.UnpicklingError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
        raise ConfigError(
            "initial-model", f"{file} does not read as a feel model file: {reason}"
        ) from None
    for key, theirs in (
        ("model", facts.model),
        ("dataset", facts.dataset),
        ("holdout-examples", facts.holdout_examples),
    ):
        if config[key] != theirs:
            raise ConfigError(
                "initial-model", f"{file} holds {key} {theirs!r}, the run has {config[key]!r}"
            )
    return state, facts
