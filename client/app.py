"""The Flower ClientApp of a FEEL device: profile queries and local training.

The messages and their keys are :mod:`task.protocol`'s. The server sends each device its
sampling cursor (``sample-cursor``), so a device keeps no state; without one the cursor is
kept in ``context.state``. With run-config ``inject-faults`` > 0 replies are corrupted at
that rate (:mod:`client.faults`). With node config ``profile-on-start = true`` a device
times its training step at the first profile query and reports the fitted compute profile,
kept in ``context.state`` for the run. A train message with ``profile-round`` gets the
profile of that round in its reply as well. Each train reply names where the device ran.

A deployment runs each message in a fresh process, which exits once Flower has sent the
reply: at that exit the heap is frozen (``gc.freeze``), so that the interpreter's last
garbage collection does not walk torch's objects, CPU time the other devices' processes on
the host can use.
"""

from __future__ import annotations

import atexit
import gc
import socket
from collections.abc import Mapping
from typing import Any

import numpy as np
from flwr.app import ConfigRecord, Context, Message, MetricRecord
from flwr.clientapp import ClientApp

from client.epoch import local_epoch
from client.faults import inject_profile, inject_statistics, inject_train
from client.fleet import fading_fields
from client.local import (
    Node,
    local_gradient,
    measure_compute,
    profile,
    reproducible_torch,
    sent_gradient,
    sent_model,
)
from task.arrays import model_state
from task.codec import EncodedTensor
from task.protocol import (
    ARRAYS,
    BATCH_SIZE,
    CONFIG,
    NUM_EXAMPLES,
    PARTITION_ID,
    SAMPLE_CURSOR,
    TRAIN_EPOCH,
    TRAIN_GRADIENT,
    TRAIN_LOSS,
    ProfileQuery,
    TrainInstruction,
    profile_reply_record,
    train_reply_record,
)
from task.transport import enable_ray_transport, in_ray_worker

app = ClientApp()
atexit.register(gc.freeze)

# context.state record holding the sampling cursor (examples consumed so far).
SAMPLING_STATE = "sampling"
# context.state record holding the device's profile reply but the fading, fixed for the run
# (with ``profile-on-start``, the compute profile measured at the first query).
PROFILE_STATE = "profile"


def _node(context: Context) -> Node:
    return Node.from_context(context.node_config, context.run_config)


def _profile_report(node: Node, context: Context, server_round: int) -> dict[str, Any]:
    """Return the device's profile report of ``server_round``, as sent.

    The first report works the profile out (the model's FLOPs, the partition) and keeps it
    in ``context.state``; later ones only draw the round's fading, without importing torch.
    """
    if PROFILE_STATE not in context.state:
        if node.measures_compute:
            node = node.with_compute(measure_compute(node))
        context.state[PROFILE_STATE] = ConfigRecord(profile(node, server_round))
    report = {
        **context.state[PROFILE_STATE],
        **fading_fields(node.config["seed"], node.partition_id, server_round),
    }
    return inject_profile(report, node.config, server_round)


def _place() -> str:
    """Return where this device runs: its Ray node id in a Simulation Engine actor, or the host."""
    if in_ray_worker():
        import ray

        return ray.get_runtime_context().get_node_id()
    return socket.gethostname()


def _reply(
    msg: Message,
    context: Context,
    node: Node,
    profile_round: int | None,
    message_type: str,
    update: Mapping[str, np.ndarray] | Mapping[str, EncodedTensor],
    metrics: Mapping[str, Any],
    buffers: Mapping[str, np.ndarray] | None = None,
) -> Message:
    """Return ``node``'s reply to train message ``msg``: the profile it asks for, the place.

    The profile is that of ``profile_round`` (none: no profile). The place is where the
    device ran (:func:`_place`). In a Simulation Engine actor (a Ray worker), Ray then carries
    the arrays' bytes out of band, unless run-config ``ray-zero-copy`` is false
    (:mod:`task.transport`).
    """
    if node.config["ray-zero-copy"] and in_ray_worker():
        enable_ray_transport(server=False)
    report = None if profile_round is None else _profile_report(node, context, profile_round)
    content = train_reply_record(message_type, update, metrics, buffers, report, _place())
    return Message(content, reply_to=msg)


@app.query("profile")
def query_profile(msg: Message, context: Context) -> Message:
    """Reply with this round's device profile (:func:`_profile_report`)."""
    server_round = ProfileQuery.from_record(msg.content).server_round
    report = _profile_report(_node(context), context, server_round)
    return Message(profile_reply_record(report), reply_to=msg)


@app.train()
def train(msg: Message, context: Context) -> Message:
    """Compute the local gradient of the global model on the assigned batch size; send it.

    Below 32 gradient bits the reply carries the encoded gradient (:mod:`task.codec`).
    """
    node = _node(context)
    task = TrainInstruction.from_record(msg.content)
    kept = int(context.state[SAMPLING_STATE]["cursor"]) if SAMPLING_STATE in context.state else 0
    cursor = task.sample_cursor if SAMPLE_CURSOR in msg.content[CONFIG] else kept
    reproducible_torch(node, task.server_round)
    result = local_gradient(
        node,
        model_state(msg.content[ARRAYS]),
        batch_size=int(task.batch_size),
        cursor=cursor,
    )
    context.state[SAMPLING_STATE] = MetricRecord({"cursor": result.cursor})
    metrics = {
        BATCH_SIZE: result.batch_size,
        TRAIN_LOSS: result.loss,
        PARTITION_ID: node.partition_id,
    }
    bits = int(task.gradient_bits or node.config["gradient-bits"])
    sent = sent_gradient(node, result.grads, bits, task.server_round)
    sent, metrics = inject_train(sent, metrics, node.config, task.server_round)
    buffers = inject_statistics(result.buffers, node.config, node.partition_id)
    return _reply(msg, context, node, task.profile_round, TRAIN_GRADIENT, sent, metrics, buffers)


@app.train("epoch")
def train_epoch(msg: Message, context: Context) -> Message:
    """Train the received model for one local epoch and send it (model-based schemes).

    With model bits in the instruction the reply is the model's change, below 32 bits the
    parameters' encoded (:func:`~client.local.sent_model`); without, the model itself.
    """
    node = _node(context)
    task = TrainInstruction.from_record(msg.content)
    reproducible_torch(node, task.server_round)
    state = model_state(msg.content[ARRAYS])
    result = local_epoch(
        node,
        state,
        local_batch=int(task.local_batch),
        learning_rate=float(task.learning_rate),
        epoch=task.server_round - 1,
    )
    metrics = {
        NUM_EXAMPLES: result.num_examples,
        TRAIN_LOSS: result.loss,
        PARTITION_ID: node.partition_id,
    }
    sent, buffers = result.parameters, result.buffers
    if task.model_bits is not None:
        received = {name: tensor.numpy() for name, tensor in state.items()}
        bits, server_round = task.model_bits, task.server_round
        sent, buffers = sent_model(node, sent, buffers, received, bits, server_round)
    sent, metrics = inject_train(sent, metrics, node.config, task.server_round, NUM_EXAMPLES)
    buffers = inject_statistics(buffers, node.config, node.partition_id)
    return _reply(msg, context, node, task.profile_round, TRAIN_EPOCH, sent, metrics, buffers)
