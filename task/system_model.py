"""The network the latency model charges: the trained one or a stand-in (``system-model``).

With run-config ``system-model`` NAME, the size p of an upload and a download (Eqs. 10-11)
and the training FLOPs per sample (Eq. 9's C; the slope of the GPU model, Eq. 27) are NAME's
at the paper's 32x32x3 CIFAR-10 input, while the configured ``model`` is the one trained.
A small model then trains in a large model's compute/communication regime: the learning
dynamics are the trained model's, the latencies NAME's.

Importable without torch (a device's profile replies need none): the networks are built,
and their FLOPs counted, inside the functions.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from task.data import dataset_shape

if TYPE_CHECKING:
    from torch import nn

# The paper's input (CIFAR-10, Sec. VI-A): channels, height, width; and its classes.
PAPER_INPUT = (3, 32, 32)
PAPER_CLASSES = 10


@dataclass(frozen=True)
class Workload:
    """FLOPs of the model: per training sample (forward + backward) and per model update."""

    training_flops_per_sample: float
    update_flops: float


def system_network(name: str) -> tuple[nn.Module, tuple[int, int, int]]:
    """Return a freshly built ``name`` at the paper's input, and that input's shape."""
    from task.models import build_model

    channels, side, _ = PAPER_INPUT
    return build_model(name, PAPER_CLASSES, channels, side), PAPER_INPUT


def charged_name(config: Mapping[str, Any]) -> str:
    """Return the name of the model the latencies are charged for."""
    return config["system-model"] or config["model"]


@functools.lru_cache(maxsize=4)
def _workload(model: str, dataset: str, system_model: str) -> Workload:
    """Return the FLOPs the latency model charges: ``model``'s or else ``system_model``'s."""
    from task.flops import training_flops_per_sample, update_flops
    from task.models import build_model

    if system_model:
        network, shape = system_network(system_model)
    else:
        data = dataset_shape(dataset)
        network = build_model(model, data.num_classes, data.in_channels, data.image_size)
        shape = (data.in_channels, data.image_size, data.image_size)
    return Workload(training_flops_per_sample(network, shape), update_flops(network))


def charged_workload(config: Mapping[str, Any]) -> Workload:
    """Return the FLOPs of the run config's charged network (:mod:`task.system_model`).

    Per training sample (the C of Eq. (9) at one cycle per FLOP) and per model update (the
    M of Eq. (12)); cached per process.
    """
    return _workload(config["model"], config["dataset"], config["system-model"])
