"""An in-process Flower Grid: the real ClientApp called directly, no SuperLink or Ray.

The ServerApp's :func:`server.app.run` drives it exactly as it drives the Simulation
Engine's grid: the same strategy, messages, ClientApp handlers and per-node
``context.state``. What it leaves out is Flower's transport (SuperLink, Ray actors,
serialisation), i.e. ~10 s of start-up per run, which is why ``feel compare`` uses it by
default. Nodes run one after another in this process.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from typing import Any

from flwr.app import Context, Error, Message, RecordDict
from flwr.clientapp import ClientApp
from flwr.serverapp import Grid
from flwr.supercore.task_identity import TaskIdentity

# Node ids are 1000 + partition id, like the fake grid of the tests.
FIRST_NODE_ID = 1000


class InProcessGrid(Grid):
    """``num_nodes`` nodes with partitions 0..K-1; ``client_app`` handles each message pushed.

    A handler that raises becomes an error reply, as in Flower's runtimes.
    """

    # Seconds between pulls while a reply is missing (replies are in as soon as pushed).
    pull_interval = 0.01

    def __init__(
        self, client_app: ClientApp, num_nodes: int, run_config: Mapping[str, Any]
    ) -> None:
        TaskIdentity.run_id, TaskIdentity.node_id, TaskIdentity.task_id = 1, 1, 1
        self.app = client_app
        self.contexts = {
            FIRST_NODE_ID + pid: Context(
                run_id=1,
                node_id=FIRST_NODE_ID + pid,
                node_config={"partition-id": pid, "num-partitions": num_nodes},
                state=RecordDict(),
                run_config=dict(run_config),
            )
            for pid in range(num_nodes)
        }
        self._replies: dict[str, Message] = {}

    def set_run(self, run_id: int) -> None:
        """Nothing to do: there is one run."""

    @property
    def run(self) -> Any:
        """Not available in process."""
        raise NotImplementedError

    def create_message(
        self,
        content: RecordDict,
        message_type: str,
        dst_node_id: int,
        group_id: str,
        ttl: float | None = None,
    ) -> Message:
        """Return a new message to ``dst_node_id``."""
        return Message(content, dst_node_id, message_type, group_id=group_id, ttl=ttl)

    def get_node_ids(self) -> list[int]:
        """Return the node ids."""
        return list(self.contexts)

    def push_messages(self, messages: Iterable[Message]) -> Iterable[str]:
        """Handle each message in turn now; keep the replies for :meth:`pull_messages`."""
        message_ids = []
        for message in messages:
            message_id = uuid.uuid4().hex
            message.metadata.__dict__["_message_id"] = message_id
            context = self.contexts[message.metadata.dst_node_id]
            try:
                reply = self.app(message, context)
            except Exception as exc:  # the runtimes turn a handler's exception into an error
                reply = Message(Error(code=0, reason=repr(exc)), reply_to=message)
            self._replies[message_id] = reply
            message_ids.append(message_id)
        return message_ids

    def pull_messages(self, message_ids: Iterable[str]) -> Iterable[Message]:
        """Return (and forget) the replies to ``message_ids``."""
        return [self._replies.pop(i) for i in list(message_ids) if i in self._replies]

    def send_and_receive(
        self, messages: Iterable[Message], *, timeout: float | None = None
    ) -> list[Message]:
        """Handle each message in turn and return the replies."""
        return list(self.pull_messages(self.push_messages(messages)))
