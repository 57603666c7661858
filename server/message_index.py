"""The Simulation Engine's message pick-up, indexed by destination node.

Every 0.1 s the Simulation Engine asks Flower's in-memory LinkState for each node's next
message (``vce_api.add_messages_to_queue``), and the LinkState answers each question by
walking every stored message and checking each one on the way (expiry, federation:
``InMemoryLinkState.get_message_ins``). With K nodes and M messages stored, one pick-up
round costs K x M checks: at a thousand devices it stalls the engine for seconds, and with
it the whole round. :func:`index_by_node` gives the state an index from node to its own
undelivered messages, so that a pick-up checks only those, and answers as Flower's would.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from flwr.app import Message
from flwr.supercore.date import now
from flwr.superlink.grid.inmemory_grid import InMemoryGrid


class NodeIndex:
    """The undelivered messages of each node, in the order they were stored.

    Parameters
    ----------
    state
        Flower's ``InMemoryLinkState``, whose ``store_message_ins`` and
        ``get_message_ins`` this index stands in for (:func:`index_by_node`).
    """

    def __init__(self, state: Any) -> None:
        self.state = state
        self.pending: defaultdict[int, dict[str, None]] = defaultdict(dict)
        self._store = state.store_message_ins

    def store_message_ins(self, message: Message) -> str | None:
        """Store ``message`` as Flower does; index it under its destination if it was stored."""
        message_id = self._store(message)
        if message_id is not None:
            with self.state.lock:
                self.pending[message.metadata.dst_node_id][message_id] = None
        return message_id

    def get_message_ins(
        self, node_id: int, limit: int | None, *, run_id: int | None = None
    ) -> list[Message]:
        """Return up to ``limit`` undelivered messages for ``node_id``, marked delivered.

        Flower's answer, from the node's own messages: each is checked first (an expired
        one, or one whose nodes left the federation, is deleted), and those of another run
        than ``run_id`` (if given) are skipped.
        """
        if limit is not None and limit < 1:
            raise AssertionError("`limit` must be >= 1")
        state, found = self.state, []
        with state.lock:
            pending = self.pending.get(node_id, {})
            for message_id in list(pending):
                state._check_stored_messages({message_id})
                message = state.message_ins_store.get(message_id)
                if message is None or message.metadata.delivered_at != "":
                    del pending[message_id]
                    continue
                if run_id is not None and message.metadata.run_id != run_id:
                    continue
                found.append(message)
                del pending[message_id]
                if limit and len(found) == limit:
                    break
            delivered_at = now().isoformat()
            for message in found:
                message.metadata.delivered_at = delivered_at
        return found


def index_by_node(grid: InMemoryGrid) -> NodeIndex:
    """Make ``grid``'s LinkState pick up each node's messages through a :class:`NodeIndex`.

    Call it before the first message is pushed: messages stored before are not indexed.
    """
    index = NodeIndex(grid.state)
    grid.state.store_message_ins = index.store_message_ins
    grid.state.get_message_ins = index.get_message_ins
    return index
