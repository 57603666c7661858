"""The Flower ClientApp of a FEEL device: profile queries and gradient computation.

Message contract (strategy side: ``strategy/``):

- ``query.profile`` with ``config["server-round"]`` -> ``profile`` ConfigRecord: the device's
  partition, size, path gain, this round's fading and CPU or GPU compute profile.
- ``train`` with the global ``arrays`` and ``config["batch-size"]`` (and optionally
  ``"gradient-bits"``) -> ``grads`` (one array per parameter), ``buffers`` (BN statistics
  after the step) and ``metrics`` (``batch-size``, ``train-loss``, ``partition-id``).

The only state kept between rounds is the sampling cursor, in ``context.state``.
"""

from __future__ import annotations

from flwr.app import Array, ArrayRecord, ConfigRecord, Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp

from client.local import Node, local_gradient, profile

app = ClientApp()

# context.state record holding the sampling cursor (examples consumed so far).
SAMPLING_STATE = "sampling"


def _node(context: Context) -> Node:
    return Node.from_context(context.node_config, context.run_config)


@app.query("profile")
def query_profile(msg: Message, context: Context) -> Message:
    """Reply with this round's device profile."""
    server_round = int(msg.content["config"]["server-round"])
    record = ConfigRecord(profile(_node(context), server_round))
    return Message(RecordDict({"profile": record}), reply_to=msg)


@app.train()
def train(msg: Message, context: Context) -> Message:
    """Compute the local gradient of the global model on the assigned batch size."""
    node = _node(context)
    config = msg.content["config"]
    cursor = int(context.state[SAMPLING_STATE]["cursor"]) if SAMPLING_STATE in context.state else 0
    result = local_gradient(
        node,
        msg.content["arrays"].to_torch_state_dict(),
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
    content = RecordDict(
        {
            "grads": ArrayRecord({k: Array(v) for k, v in result.grads.items()}),
            "buffers": ArrayRecord({k: Array(v) for k, v in result.buffers.items()}),
            "metrics": MetricRecord(metrics),
        }
    )
    return Message(content, reply_to=msg)
