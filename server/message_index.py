"""The Simulation Engine's message traffic, indexed: pick-ups by node, pulls by reply.

Every 0.1 s the Simulation Engine asks Flower's in-memory LinkState for each node's next
message (``vce_api.add_messages_to_queue``), and the LinkState answers each question by
walking every stored message and checking each one on the way (expiry, federation:
``InMemoryLinkState.get_message_ins``). With K nodes and M messages stored, one pick-up
round costs K x M checks: at a thousand devices it stalls the engine for seconds, and with
it the whole round. :func:`index_messages` gives the state an index from node to its own
undelivered messages, so that a pick-up checks only those, and answers as Flower's would.

The same pick-up waits 0.1 s between rounds, so a message pushed just after one waits for
the next: half of that on average, before each round's train messages. With the index, a
pick-up round that starts with nothing to hand out waits instead for the grid's next push
(up to :data:`WAKE_TIMEOUT_S`), and hands the pushed messages out as soon as they are in.

The ServerApp's pulls have the same shape: Flower's ``get_message_res`` checks every
awaited message on each pull, under the lock the engine's threads need to store replies.
A :class:`ReplyIndex` notes which messages have a reply stored, and a pull asks the state
only for those; every :data:`FULL_PULL_S` one pull asks for all, so that the errors the
state itself makes (a message expired, a node gone) still come back.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from flwr.app import Message
from flwr.supercore.date import now
from flwr.superlink.grid.inmemory_grid import InMemoryGrid

# Seconds a pick-up round with nothing to hand out waits for a push. The engine's own threads
# wait up to 1 s for their queues, so a wait of this length does not delay its stop further.
WAKE_TIMEOUT_S = 1.0
# Seconds between pulls that ask the state for every awaited reply.
FULL_PULL_S = 1.0


class NodeIndex:
    """The undelivered messages of each node, in the order they were stored.

    Parameters
    ----------
    state
        Flower's ``InMemoryLinkState``, whose ``store_message_ins`` and
        ``get_message_ins`` this index stands in for (:func:`index_messages`).
    wake_timeout_s
        Seconds a pick-up round with nothing to hand out waits for :meth:`pushed` (0: none).
    """

    def __init__(self, state: Any, wake_timeout_s: float = WAKE_TIMEOUT_S) -> None:
        self.state = state
        self.pending: defaultdict[int, dict[str, None]] = defaultdict(dict)
        self.wake_timeout_s = wake_timeout_s
        self._store = state.store_message_ins
        self._pushed = threading.Condition()
        # The node a pick-up round starts with: the first one the engine asked for.
        self._first_node: int | None = None

    def store_message_ins(self, message: Message) -> str | None:
        """Store ``message`` as Flower does; index it under its destination if it was stored."""
        message_id = self._store(message)
        if message_id is not None:
            with self.state.lock:
                self.pending[message.metadata.dst_node_id][message_id] = None
        return message_id

    def pushed(self) -> None:
        """Wake a pick-up round waiting for messages: a push has stored all of its own."""
        with self._pushed:
            self._pushed.notify_all()

    def _await_push(self, node_id: int) -> None:
        """At the start of a pick-up round with nothing to hand out, wait for a push."""
        if self._first_node is None:
            self._first_node = node_id
        if node_id == self._first_node:
            with self._pushed:
                self._pushed.wait_for(self._any_pending, self.wake_timeout_s)

    def _any_pending(self) -> bool:
        """Whether any node has an undelivered message (read under the state's lock)."""
        with self.state.lock:
            return any(self.pending.values())

    def get_message_ins(
        self, node_id: int, limit: int | None, *, run_id: int | None = None
    ) -> list[Message]:
        """Return up to ``limit`` undelivered messages for ``node_id``, marked delivered.

        Flower's answer, from the node's own messages: each is checked first (an expired
        one, or one whose nodes left the federation, is deleted), and those of another run
        than ``run_id`` (if given) are skipped. A call for the node a pick-up round starts
        with, while no node has a message, first waits for :meth:`pushed`.
        """
        if limit is not None and limit < 1:
            raise AssertionError("`limit` must be >= 1")
        self._await_push(node_id)
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


class ReplyIndex:
    """The messages whose replies are stored and not pulled yet, for cheap pulls.

    Parameters
    ----------
    state
        Flower's ``InMemoryLinkState``, whose ``store_message_res`` this index wraps.
    full_pull_s
        Seconds between pulls that ask the state for every awaited reply.
    """

    def __init__(self, state: Any, full_pull_s: float = FULL_PULL_S) -> None:
        self.state = state
        self.replied: set[str] = set()
        self.full_pull_s = full_pull_s
        self._store = state.store_message_res
        self._full_pull_at = time.monotonic()

    def store_message_res(self, message: Message) -> str | None:
        """Store the reply ``message`` as Flower does; note the message it answers."""
        message_id = self._store(message)
        if message_id is not None:
            with self.state.lock:
                self.replied.add(message.metadata.reply_to_message_id)
        return message_id

    def to_pull(self, message_ids: Iterable[str]) -> set[str]:
        """Return those of ``message_ids`` to ask the state for: all, every ``full_pull_s``."""
        message_ids = set(message_ids)
        if time.monotonic() - self._full_pull_at >= self.full_pull_s:
            self._full_pull_at = time.monotonic()
            return message_ids
        with self.state.lock:
            return message_ids & self.replied

    def pulled(self, replies: Iterable[Message]) -> None:
        """Forget the messages whose ``replies`` were pulled."""
        with self.state.lock:
            self.replied -= {reply.metadata.reply_to_message_id for reply in replies}


def index_messages(
    grid: InMemoryGrid, wake_timeout_s: float = WAKE_TIMEOUT_S, full_pull_s: float = FULL_PULL_S
) -> tuple[NodeIndex, ReplyIndex]:
    """Make ``grid``'s pick-ups go through a :class:`NodeIndex`, its pulls a :class:`ReplyIndex`.

    Each ``grid.push_messages`` then wakes a waiting pick-up round once all its messages are
    stored. Call it before the first message is pushed: messages stored before are not
    indexed.
    """
    nodes, replies = NodeIndex(grid.state, wake_timeout_s), ReplyIndex(grid.state, full_pull_s)
    grid.state.store_message_ins = nodes.store_message_ins
    grid.state.get_message_ins = nodes.get_message_ins
    grid.state.store_message_res = replies.store_message_res
    push, pull = grid.push_messages, grid.pull_messages

    def push_and_wake(messages: Iterable[Message]) -> Iterable[str]:
        message_ids = push(messages)
        nodes.pushed()
        return message_ids

    def pull_replied(message_ids: Iterable[str]) -> Iterable[Message]:
        asked = replies.to_pull(message_ids)
        pulled = list(pull(asked)) if asked else []
        replies.pulled(pulled)
        return pulled

    grid.push_messages, grid.pull_messages = push_and_wake, pull_replied
    return nodes, replies
