"""Local training of the model-based schemes: one epoch of mini-batch SGD (Sec. VI-C).

Model-based FEEL (FedAvg [15]) and individual learning train the received model for one
pass over the device's data and send the model back; the gradient schemes' one-step
computation is :func:`client.local.local_gradient`. The model comes back as its parameters
and its buffers (BatchNorm statistics), like a gradient and its buffers.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from client.local import Node, global_model, shard


@dataclass(frozen=True)
class LocalModel:
    """A device's reply to one ``train.epoch`` message.

    Attributes
    ----------
    parameters
        The trained model's parameters, by ``state_dict`` name.
    buffers
        Its buffers (BatchNorm statistics), by ``state_dict`` name.
    loss
        Mean training loss of the epoch's mini-batches, each taken before its step.
    num_examples
        Examples trained on, N_k.
    """

    parameters: dict[str, np.ndarray]
    buffers: dict[str, np.ndarray]
    loss: float
    num_examples: int


def local_epoch(
    node: Node,
    state: Mapping[str, Any],
    local_batch: int,
    learning_rate: float,
    epoch: int,
) -> LocalModel:
    """Train ``state`` for one epoch of plain SGD on the device's data.

    Parameters
    ----------
    node
        The device.
    state
        The model's ``state_dict`` as torch tensors.
    local_batch
        Mini-batch size b of each step; the last step takes the remainder.
    learning_rate
        Step size of every local step.
    epoch
        Index of the epoch, which with the seed and partition keys the visiting order.
    """
    import torch
    from torch.nn import functional

    from task.sampling import epoch_order
    from task.training import resolve_device

    config, pid = node.config, node.partition_id
    examples = shard(node)
    order = epoch_order(len(examples), config["seed"], pid, epoch)
    device = resolve_device(config["device"])
    model = global_model(config, state)
    model.to(device).train()
    optimizer = torch.optim.SGD(model.parameters(), lr=learning_rate)
    total = 0.0
    for start in range(0, len(order), local_batch):
        batch = order[start : start + local_batch]
        images, targets = examples.examples(batch)
        inputs = torch.tensor(images, device=device)
        labels = torch.tensor(targets, device=device)
        optimizer.zero_grad(set_to_none=True)
        loss = functional.cross_entropy(model(inputs), labels)
        loss.backward()
        optimizer.step()
        total += float(loss.item()) * len(batch)
    names = {name for name, _ in model.named_parameters()}
    parameters: dict[str, np.ndarray] = {}
    buffers: dict[str, np.ndarray] = {}
    for name, value in model.state_dict().items():
        (parameters if name in names else buffers)[name] = value.detach().cpu().numpy().copy()
    return LocalModel(parameters, buffers, total / len(order), len(order))
