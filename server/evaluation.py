"""Centralized evaluation of the global model on the held-out test split (and the probe set)."""

from __future__ import annotations

import numpy as np
import torch
from flwr.app import ArrayRecord
from torch import nn

from server.probe import probe_loss
from server.results import PROBE_METRIC
from task.arrays import model_state
from task.training import evaluate

# The test metrics of a round, None in ``rounds.jsonl`` for a round not evaluated.
METRICS = ("test_loss", "test_accuracy")


class Evaluator:
    """Test loss and accuracy of a global model given as an ``ArrayRecord``.

    Parameters
    ----------
    model
        A model of the trained architecture; its weights are replaced on each call.
    x_test, y_test
        Test inputs (N, C, H, W) and integer labels.
    device
        Torch device to evaluate on.
    probe
        Training inputs and labels of the probe set (:mod:`server.probe`), if any: each call
        then also returns their training loss (Eq. 4) as ``probe_loss``.
    """

    def __init__(
        self,
        model: nn.Module,
        x_test: np.ndarray,
        y_test: np.ndarray,
        device: torch.device,
        probe: tuple[np.ndarray, np.ndarray] | None = None,
    ) -> None:
        self.model = model
        self.x = x_test
        self.y = y_test
        self.device = device
        self.probe = probe

    @property
    def metrics(self) -> tuple[str, ...]:
        """Return the names of the metrics of a call (a ``rounds.jsonl`` field each)."""
        return METRICS if self.probe is None else (*METRICS, PROBE_METRIC)

    def __call__(self, arrays: ArrayRecord) -> dict[str, float]:
        """Return ``{"test_loss": mean cross-entropy, "test_accuracy": fraction correct}``.

        With a probe set, ``probe_loss`` too.
        """
        self.model.load_state_dict(model_state(arrays))
        loss, accuracy = evaluate(self.model, self.x, self.y, self.device)
        metrics = {"test_loss": loss, "test_accuracy": accuracy}
        if self.probe is not None:
            metrics[PROBE_METRIC] = probe_loss(self.model, *self.probe, self.device)
        return metrics
