"""Messages pushed to the nodes now, their replies pulled later: one exchange with the grid.

Flower's ``Grid.send_and_receive`` pushes and waits in one call. The FEEL round splits the
two, so that the next round's profile query can go out while this round's gradients are
being computed (:meth:`strategy.loop.FeelStrategy.start`), with no thread: the server only
ever talks to the grid from the loop's own thread.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass

from flwr.app import Message
from flwr.common.constant import SUPERLINK_NODE_ID
from flwr.serverapp import Grid

# Seconds between pulls on a grid that does not say. Flower's HTTP grid (deployment) waits
# 3 s between pulls in its own ``send_and_receive``; one pull is a request to the SuperLink on
# the server's host, so polling at 50 ms costs little and a reply is seen 50 ms after it is in.
DEFAULT_PULL_INTERVAL_S = 0.05
# Seconds added to the pull interval per reply still awaited. A pull asks for every awaited
# reply, and the Simulation Engine's LinkState answers it under the lock its own threads
# need to hand out messages and store replies: spacing the pulls with the number awaited
# keeps their cost per second flat (at 1,000 awaited replies, a pull every 20 ms).
PULL_INTERVAL_PER_REPLY_S = 2e-5


def reply_sources(messages: Iterable[Message], replies: Iterable[Message]) -> dict[int, Message]:
    """Return the replies to ``messages`` (as sent) keyed by the node each one answers for.

    That is the destination of the message replied to. A reply is kept only if it answers
    one of ``messages`` and comes from that node, or is the error the SuperLink makes for a
    node that stopped sending heartbeats (Node Unavailable), which comes from the
    SuperLink's own node id. Anything else is dropped: a message a device made up (which
    the SuperLink files as from node 1), or one sent in another node's name.
    """
    destination = {m.metadata.message_id: m.metadata.dst_node_id for m in messages}
    kept = {}
    for reply in replies:
        node = destination.get(reply.metadata.reply_to_message_id)
        source = reply.metadata.src_node_id
        if node is not None and (
            source == node or (source == SUPERLINK_NODE_ID and reply.has_error())
        ):
            kept[node] = reply
    return kept


@dataclass
class Exchange:
    """Messages pushed to their nodes, and the replies pulled for them so far."""

    grid: Grid
    messages: list[Message]
    message_ids: set[str]
    # Whether the last receive ended at the grace period after a quorum, with replies missing.
    cut_short: bool = False

    @classmethod
    def push(cls, grid: Grid, messages: Iterable[Message]) -> Exchange:
        """Push ``messages`` to their nodes now; pull their replies with :meth:`receive`."""
        exchange = cls(grid, [], set())
        exchange.push_more(messages)
        return exchange

    def push_more(self, messages: Iterable[Message]) -> None:
        """Push ``messages`` too (none: nothing goes to the grid); :meth:`receive` waits for all."""
        messages = list(messages)
        if messages:
            self.message_ids |= set(self.grid.push_messages(messages))
            self.messages += messages

    def receive(
        self, timeout: float, quorum: int | None = None, grace_s: float = 0.0
    ) -> dict[int, Message]:
        """Wait up to ``timeout`` seconds for the replies; return those in, by node.

        Once ``quorum`` of them are in (None: never), the others get ``grace_s`` seconds
        more, within the timeout; :attr:`cut_short` says whether the grace ended the wait.
        The pulls are spaced by the grid's own ``pull_interval`` where it has one, or more
        while many replies are awaited (:data:`PULL_INTERVAL_PER_REPLY_S`).
        """
        waiting, replies = set(self.message_ids), []
        interval = getattr(self.grid, "pull_interval", DEFAULT_PULL_INTERVAL_S)
        deadline = time.monotonic() + timeout
        graced = False
        while waiting:
            pulled = list(self.grid.pull_messages(waiting))
            replies += pulled
            waiting -= {reply.metadata.reply_to_message_id for reply in pulled}
            if not graced and quorum is not None and len(self.message_ids) - len(waiting) >= quorum:
                graced, deadline = True, min(deadline, time.monotonic() + grace_s)
            if not waiting or time.monotonic() >= deadline:
                break
            time.sleep(max(interval, PULL_INTERVAL_PER_REPLY_S * len(waiting)))
        self.cut_short = graced and bool(waiting)
        return reply_sources(self.messages, replies)
