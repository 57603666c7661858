"""The network the latency model charges: the trained one or a stand-in (``system-model``).

With run-config ``system-model`` NAME, the size p of an upload and a download (Eqs. 10-11)
and the training FLOPs per sample (Eq. 9's C; the slope of the GPU model, Eq. 27) are NAME's
at the paper's 32x32x3 CIFAR-10 input, while the configured ``model`` is the one trained.
A small model then trains in a large model's compute/communication regime: the learning
dynamics are the trained model's, the latencies NAME's.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import nn

from task.models import build_model

# The paper's input (CIFAR-10, Sec. VI-A): channels, height, width; and its classes.
PAPER_INPUT = (3, 32, 32)
PAPER_CLASSES = 10


def system_network(name: str) -> tuple[nn.Module, tuple[int, int, int]]:
    """Return a freshly built ``name`` at the paper's input, and that input's shape."""
    channels, side, _ = PAPER_INPUT
    return build_model(name, PAPER_CLASSES, channels, side), PAPER_INPUT


def charged_name(config: Mapping[str, Any]) -> str:
    """Return the name of the model the latencies are charged for."""
    return config["system-model"] or config["model"]
