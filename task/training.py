"""One local gradient computation (Step 1 of Sec. II-A) and test-set evaluation."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.nn import functional

from task.batch_statistics import BatchStatistics
from task.errors import ConfigError
from task.names import DEVICE_NAMES


def resolve_device(name: str) -> torch.device:
    """Map the ``device`` setting to a torch device; ``"auto"`` picks CUDA when available."""
    if name not in DEVICE_NAMES:
        raise ConfigError.unknown_choice("device", name, DEVICE_NAMES)
    if name == "cpu" or (name == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise ConfigError("device", "'cuda' requested but torch sees no CUDA device")
    return torch.device("cuda")


def compute_gradient(
    model: nn.Module, x: np.ndarray, y: np.ndarray, device: torch.device, chunk: int = 1024
) -> tuple[dict[str, np.ndarray], float, dict[str, np.ndarray]]:
    """Mean cross-entropy gradient of ``model`` on one batch, g_k of Sec. III-A.

    Forward and backward passes in train mode, so batch-normalisation layers normalise
    with the batch statistics, as local training would; those statistics are returned.
    A batch larger than ``chunk`` (the whole local dataset of gradient-based FEEL, Sec.
    VI-C) goes through in chunks of at most ``chunk`` examples: each chunk's summed loss,
    divided by the batch size, is back-propagated into the same gradients, so g_k is the
    chunk gradients weighted by chunk size, the full-batch gradient for a model without
    BatchNorm. With BatchNorm each chunk is normalised with its own statistics (as
    gradient accumulation does); the statistics returned are the whole batch's.

    Parameters
    ----------
    model
        The current global model; moved to ``device``, its gradients overwritten.
    x, y
        The batch B_k: float32 ``(B, C, H, W)`` images and int64 labels.
    device
        Where to compute.
    chunk
        Most examples per forward and backward pass.

    Returns
    -------
    grads
        float32 gradient per ``named_parameters()`` name (zeros for unused parameters).
    loss
        The batch's mean loss before the update.
    buffers
        The batch's BatchNorm statistics under the weights received, in the places of the
        ``state_dict``'s BN buffers (:meth:`task.batch_statistics.BatchStatistics.buffers`).
    """
    model.to(device).train()
    model.zero_grad(set_to_none=True)
    loss_sum = 0.0
    with BatchStatistics(model).recording() as statistics:
        for start in range(0, len(x), chunk):
            inputs = torch.tensor(x[start : start + chunk], device=device)
            labels = torch.tensor(y[start : start + chunk], device=device)
            if len(x) <= chunk:
                loss = functional.cross_entropy(model(inputs), labels)
            else:
                loss = functional.cross_entropy(model(inputs), labels, reduction="sum") / len(x)
            loss.backward()
            loss_sum += float(loss.item())
    grads = {
        name: (torch.zeros_like(p) if p.grad is None else p.grad).detach().cpu().numpy()
        for name, p in model.named_parameters()
    }
    return grads, loss_sum, statistics.buffers()


@torch.no_grad()
def evaluate(
    model: nn.Module, x: np.ndarray, y: np.ndarray, device: torch.device, batch_size: int = 500
) -> tuple[float, float]:
    """Mean cross-entropy loss and accuracy of ``model`` (eval mode) on ``(x, y)``."""
    model.to(device).eval()
    loss_sum, correct = 0.0, 0
    for start in range(0, len(x), batch_size):
        inputs = torch.tensor(x[start : start + batch_size], device=device)
        labels = torch.tensor(y[start : start + batch_size], device=device)
        logits = model(inputs)
        loss_sum += functional.cross_entropy(logits, labels, reduction="sum").item()
        correct += int((logits.argmax(dim=1) == labels).sum().item())
    return loss_sum / len(x), correct / len(x)
