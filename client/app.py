"""The Flower ClientApp of a FEEL device: profile queries and gradient computation.

Message contract (strategy side: ``strategy/``):

- ``query.profile`` with ``config["server-round"]`` -> ``profile`` ConfigRecord: the device's
  partition, size, path gain, this round's fading and CPU or GPU compute profile.
- ``train`` with the global ``arrays`` and ``config["batch-size"]`` (and optionally
  ``"gradient-bits"``) -> ``grads`` (one array per parameter), ``buffers`` (BN statistics
  after the step) and ``metrics`` (``batch-size``, ``train-loss``, ``partition-id``).
- ``train.epoch`` (model-based schemes) with the ``arrays`` to start from,
  ``config["local-batch"]`` and ``config["learning-rate"]`` -> ``arrays`` (the model after one
  local epoch) and ``metrics`` (``num-examples``, ``train-loss``, ``partition-id``).

The server sends each device its sampling cursor (``config["sample-cursor"]``), so a device
keeps no state; without one the cursor is kept in ``context.state``. With run-config
``inject-faults`` > 0 replies are corrupted at that rate (:mod:`client.faults`). With node
config ``profile-on-start = true`` a device times its training step at the first profile
query and reports the fitted compute profile, kept in ``context.state`` for the run.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from flwr.app import ArrayRecord, ConfigRecord, Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp

from client.epoch import local_epoch
from client.faults import inject_profile, inject_train
from client.fleet import fading_fields
from client.local import (
    Node,
    local_gradient,
    measure_compute,
    model_state,
    profile,
    reproducible_torch,
)
from task.arrays import array_record, in_ray_worker, send_arrays_out_of_band

app = ClientApp()

# context.state record holding the sampling cursor (examples consumed so far).
SAMPLING_STATE = "sampling"
# context.state record holding the device's profile reply but the fading, fixed for the run
# (with ``profile-on-start``, the compute profile measured at the first query).
PROFILE_STATE = "profile"


def _node(context: Context) -> Node:
    return Node.from_context(context.node_config, context.run_config)


def _array_record(arrays: Mapping[str, np.ndarray]) -> ArrayRecord:
    """Return ``arrays`` as a reply's record.

    In a Simulation Engine actor (a Ray worker), Ray then carries their bytes out of band
    (:func:`task.arrays.send_arrays_out_of_band`).
    """
    if in_ray_worker():
        send_arrays_out_of_band()
    return array_record(arrays)


@app.query("profile")
def query_profile(msg: Message, context: Context) -> Message:
    """Reply with this round's device profile.

    The first query works the profile out (the model's FLOPs, the partition) and keeps it in
    ``context.state``; later ones only draw the round's fading, without importing torch.
    """
    server_round = int(msg.content["config"]["server-round"])
    node = _node(context)
    if PROFILE_STATE not in context.state:
        if node.measures_compute:
            node = node.with_compute(measure_compute(node))
        context.state[PROFILE_STATE] = ConfigRecord(profile(node, server_round))
    report = {
        **context.state[PROFILE_STATE],
        **fading_fields(node.config["seed"], node.partition_id, server_round),
    }
    record = ConfigRecord(inject_profile(report, node.config, server_round))
    return Message(RecordDict({"profile": record}), reply_to=msg)


@app.train()
def train(msg: Message, context: Context) -> Message:
    """Compute the local gradient of the global model on the assigned batch size."""
    node = _node(context)
    config = msg.content["config"]
    cursor = int(context.state[SAMPLING_STATE]["cursor"]) if SAMPLING_STATE in context.state else 0
    cursor = int(config.get("sample-cursor", cursor))
    reproducible_torch(node, int(config["server-round"]))
    result = local_gradient(
        node,
        model_state(msg.content["arrays"]),
        batch_size=int(config["batch-size"]),
        bits=int(config.get("gradient-bits", node.config["gradient-bits"])),
        server_round=int(config["server-round"]),
        cursor=cursor,
    )
    context.state[SAMPLING_STATE] = MetricRecord({"cursor": result.cursor})
    metrics = {
        "batch-size": result.batch_size,
        "train-loss": result.loss,
        "partition-id": node.partition_id,
    }
    grads, metrics = inject_train(result.grads, metrics, node.config, int(config["server-round"]))
    content = RecordDict(
        {
            "grads": _array_record(grads),
            "buffers": _array_record(result.buffers),
            "metrics": MetricRecord(metrics),
        }
    )
    return Message(content, reply_to=msg)


@app.train("epoch")
def train_epoch(msg: Message, context: Context) -> Message:
    """Train the received model for one local epoch and return it (model-based schemes)."""
    node = _node(context)
    config = msg.content["config"]
    reproducible_torch(node, int(config["server-round"]))
    result = local_epoch(
        node,
        model_state(msg.content["arrays"]),
        local_batch=int(config["local-batch"]),
        learning_rate=float(config["learning-rate"]),
        epoch=int(config["server-round"]) - 1,
    )
    metrics = {
        "num-examples": result.num_examples,
        "train-loss": result.loss,
        "partition-id": node.partition_id,
    }
    arrays, metrics = inject_train(
        result.arrays, metrics, node.config, int(config["server-round"]), "num-examples"
    )
    content = RecordDict(
        {
            "arrays": _array_record(arrays),
            "metrics": MetricRecord(metrics),
        }
    )
    return Message(content, reply_to=msg)
