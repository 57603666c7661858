"""A simulation's peak memory, estimated before it starts, so that one too big is refused.

``feel simulate`` runs the ServerApp, a SuperLink, Ray's services and one Ray actor per
client slot (``--cpus-per-client``) on this host. Its peak, the proportional set size summed
over that process tree, is estimated from the run's model, dataset, devices and actors:

- the services (SuperLink, Ray's GCS, raylet and monitors, ``flwr run``) cost
  :data:`SERVICES_BYTES`; the ServerApp's process :data:`SERVER_PROCESS_BYTES` and the
  dataset; each actor :data:`ACTOR_PROCESS_BYTES` and the shards it keeps loaded (it reads
  its devices' examples from the files :func:`client.shard.write_shards` wrote);
- each actor trains at the largest batch: the model, its gradient and the tensors autograd
  keeps for the backward pass;
- the server evaluates the test set in batches of :data:`EVALUATION_BATCH`, with a few
  layer outputs alive at once;
- a round's replies (each device's update at its bits, with its BatchNorm statistics) are
  written by the actors into Ray's shared-memory object store, and held there until the
  server has averaged them; so is the model each round broadcasts;
- each device's state on the server (its profile, pin, records) costs :data:`DEVICE_BYTES`.

The constants were fitted to runs on a 2-core box (``docs/performance.md``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from client.shard import CACHED_SHARDS

GB = 1e9
# The SuperLink, Ray's GCS, raylet, dashboard agent and monitors, ``flwr run``, ``feel``.
SERVICES_BYTES = 0.71 * GB
# The ServerApp's process: torch, Flower, Ray and Hugging Face ``datasets`` imported (PSS).
SERVER_PROCESS_BYTES = 0.72 * GB
# An actor's: torch, Flower and Ray (its shards come from files, without ``datasets``).
ACTOR_PROCESS_BYTES = 0.60 * GB
# Copies of the model a process holds besides its own: the received state, the gradient,
# the packed reply (an actor); the update, the new model and its packed record (the server).
MODEL_COPIES = 4
# The server's evaluation batch (task.training.evaluate) and the layer outputs alive at once.
EVALUATION_BATCH = 500
LIVE_OUTPUTS = 4
# A device's state on the server besides its reply.
DEVICE_BYTES = 0.3e6

MEMINFO = Path("/proc/meminfo")
CGROUP_MEMORY = Path("/sys/fs/cgroup")


@dataclass(frozen=True)
class MemoryEstimate:
    """A run's estimated peak memory in bytes, by what holds it.

    Attributes
    ----------
    processes
        The services, and the ServerApp's and the actors' processes with their imports.
    data
        The dataset in the ServerApp, and the shards each actor keeps loaded.
    training
        The actors' models, gradients and saved activations at the largest batch, and the
        server's copies of the model and its evaluation.
    messages
        A round's replies and the broadcast model, in Ray's object store, and the devices'
        state on the server.
    actors
        Ray actors the run starts.
    """

    processes: float
    data: float
    training: float
    messages: float
    actors: int

    @property
    def total(self) -> float:
        """The estimated peak."""
        return self.processes + self.data + self.training + self.messages

    def describe(self) -> str:
        """Return the total and its parts, in GB."""
        parts = {
            "processes": self.processes,
            "data": self.data,
            "training": self.training,
            "a round's messages": self.messages,
        }
        listed = ", ".join(f"{name} {value / GB:.1f}" for name, value in parts.items())
        return f"about {self.total / GB:.1f} GB ({self.actors} Ray actors; {listed})"


@dataclass(frozen=True)
class ModelFootprint:
    """What a model weighs in a run: its tensors, its replies and its activations.

    Attributes
    ----------
    parameters
        Trainable parameters p, one update element each.
    buffer_bytes
        The BatchNorm statistics a reply carries (float32).
    state_bytes
        The whole ``state_dict``, as the server broadcasts it (float32).
    activation_bytes_per_sample
        What autograd keeps for the backward pass, per training example.
    largest_output_bytes_per_sample
        The largest tensor of a forward pass, per example (the evaluation's peak).
    """

    parameters: int
    buffer_bytes: int
    state_bytes: int
    activation_bytes_per_sample: float
    largest_output_bytes_per_sample: float

    def reply_bytes(self, bits: int) -> float:
        """Return a device's reply: its update at ``bits`` per element, its statistics."""
        return self.parameters * bits / 8 + self.buffer_bytes


def model_footprint(model: str, dataset: str) -> ModelFootprint:
    """Measure ``model`` on ``dataset``'s inputs, on torch's ``meta`` device (nothing computed)."""
    import torch
    from torch.nn import functional

    from task.data import dataset_shape
    from task.flops import parameter_count
    from task.models import build_model

    shape = dataset_shape(dataset)
    network = build_model(model, shape.num_classes, shape.in_channels, shape.image_size)
    parameters = parameter_count(network)
    state_bytes = sum(t.numel() * 4 for t in network.state_dict().values())
    buffer_bytes = sum(t.numel() * 4 for t in network.buffers())
    probe = network.to("meta").train()

    def saved_bytes(batch: int) -> list[int]:
        saved: list[int] = []

        def pack(tensor: torch.Tensor) -> torch.Tensor:
            saved.append(tensor.numel() * tensor.element_size())
            return tensor

        size = (batch, shape.in_channels, shape.image_size, shape.image_size)
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
            functional.cross_entropy(
                probe(torch.zeros(size, device="meta")),
                torch.zeros(batch, dtype=torch.long, device="meta"),
            )
        return saved

    # Two batches apart, so that the weights autograd keeps (once a batch) cancel out.
    two, four = saved_bytes(2), saved_bytes(4)
    per_sample = (sum(four) - sum(two)) / 2
    largest = max(b - a for a, b in zip(two, four, strict=True)) / 2
    return ModelFootprint(parameters, buffer_bytes, state_bytes, per_sample, largest)


def dataset_bytes(dataset: str, data_dir: str | None) -> int:
    """Return the bytes of the dataset's arrays as a process holds them."""
    from task.data import load_dataset

    data = load_dataset(dataset, data_dir)
    return sum(array.nbytes for array in (data.x_train, data.y_train, data.x_test, data.y_test))


def estimate(
    config: Mapping[str, Any],
    devices: int,
    actors: int,
    footprint: ModelFootprint,
    data_bytes: int,
    reply_bits: int,
) -> MemoryEstimate:
    """Estimate the peak of a simulation of ``devices`` devices on ``actors`` Ray actors.

    Parameters
    ----------
    config
        The run config (``max-batch``).
    devices, actors
        The devices K, and the Ray actors that serve them.
    footprint
        The model's (:func:`model_footprint`).
    data_bytes
        The dataset's (:func:`dataset_bytes`).
    reply_bits
        Bits per element of the devices' updates (model-bits or gradient-bits).
    """
    model_bytes = footprint.state_bytes
    activations = footprint.activation_bytes_per_sample * config["max-batch"]
    evaluation = EVALUATION_BATCH * LIVE_OUTPUTS * footprint.largest_output_bytes_per_sample
    server = MODEL_COPIES * model_bytes + evaluation
    return MemoryEstimate(
        processes=SERVICES_BYTES + SERVER_PROCESS_BYTES + actors * ACTOR_PROCESS_BYTES,
        data=data_bytes * (1 + actors * min(1.0, CACHED_SHARDS / devices)),
        training=actors * (MODEL_COPIES * model_bytes + activations) + server,
        messages=devices * (footprint.reply_bytes(reply_bits) + DEVICE_BYTES) + model_bytes,
        actors=actors,
    )


def simulation_actors(cpus_per_client: int) -> int:
    """Return the Ray actors Flower starts here: one per ``cpus_per_client`` CPUs (at least 1)."""
    return max(1, len(os.sched_getaffinity(0)) // cpus_per_client)


def available_bytes() -> float:
    """Return the memory left to take: MemAvailable, or less under a cgroup limit."""
    fields = dict(line.split(":", 1) for line in MEMINFO.read_text().splitlines())
    available = int(fields["MemAvailable"].split()[0]) * 1024
    try:
        limit = (CGROUP_MEMORY / "memory.max").read_text().strip()
        used = int((CGROUP_MEMORY / "memory.current").read_text())
    except (OSError, ValueError):
        return float(available)
    if limit == "max":
        return float(available)
    return float(min(available, int(limit) - used))
