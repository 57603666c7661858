"""Centralized evaluation of the global model on the held-out test split."""

from __future__ import annotations

import numpy as np
import torch
from flwr.app import ArrayRecord
from torch import nn

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
    """

    def __init__(
        self, model: nn.Module, x_test: np.ndarray, y_test: np.ndarray, device: torch.device
    ) -> None:
        self.model = model
        self.x = x_test
        self.y = y_test
        self.device = device

    def __call__(self, arrays: ArrayRecord) -> dict[str, float]:
        """Return ``{"test_loss": mean cross-entropy, "test_accuracy": fraction correct}``."""
        self.model.load_state_dict(arrays.to_torch_state_dict())
        loss, accuracy = evaluate(self.model, self.x, self.y, self.device)
        return {"test_loss": loss, "test_accuracy": accuracy}
