"""A device's node and the initial model state, for the local-epoch tests."""

import torch

from client.local import Node, new_model
from task.config import resolve_run_config


def node(pid=0):
    return Node(pid, 3, resolve_run_config({"device": "cpu"}), {})


def initial_state():
    torch.manual_seed(0)
    return new_model(node().config).state_dict()
