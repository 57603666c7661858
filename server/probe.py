"""The training loss of Eq. (4)/(7) on a fixed probe set of training examples.

The loss-decay model of Eq. (8) is about the training loss L(w) = (1/N) sum_i l(w; x_i, y_i)
(Eqs. 4, 7), so its check (:mod:`cli.compare.decay`) measures that loss on a probe set: a
seeded sample of the training split, the same in every round and every run of a seed.

BatchNorm choice: the probe loss is the loss of a forward pass over the whole probe set as
one batch, with the BatchNorm layers normalising by that batch's own mean and variance
(train mode) and every other layer in eval mode, under ``torch.no_grad()`` on a copy of the
model. It is the loss the devices' gradients are taken on (:func:`task.training.
compute_gradient`, train mode), it does not depend on the running statistics that the server
averages (Sec. II-A) nor on the mode the model was left in, and the copy keeps the model's
running statistics untouched.
"""

from __future__ import annotations

import copy

import numpy as np
import torch
from torch import nn
from torch.nn import functional

from task.seeding import stream_rng

BATCH_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)


def probe_set(
    x_train: np.ndarray, y_train: np.ndarray, examples: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Return ``examples`` training examples (all if fewer), drawn from ``seed`` once each."""
    count = min(examples, len(x_train))
    index = np.sort(stream_rng("server.probe", seed).choice(len(x_train), count, replace=False))
    return x_train[index], y_train[index]


@torch.no_grad()
def probe_loss(model: nn.Module, x: np.ndarray, y: np.ndarray, device: torch.device) -> float:
    """Mean cross-entropy of ``model`` on ``(x, y)``, BatchNorm on the probe's own statistics.

    See the module docstring; ``model`` itself (mode, running statistics) is not changed.
    """
    probe = copy.deepcopy(model).to(device).eval()
    for module in probe.modules():
        if isinstance(module, BATCH_NORMS):
            module.train()
    logits = probe(torch.tensor(x, device=device))
    return float(functional.cross_entropy(logits, torch.tensor(y, device=device)).item())
