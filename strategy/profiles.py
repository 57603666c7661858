"""Step 1 of a round: every connected device's profile, checked; the usable reports kept.

A device that trains in a round reports its profile for the next one in its train reply
(``profile-round``); the others are sent a ``query.profile``. Either way the report is the
same, so the schedule does not depend on how it came.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from logging import INFO, WARNING

from flwr.app import Message
from flwr.serverapp import Grid
from flwr.supercore import log

from strategy.deadlines import GRACE_OVER, TIMED_OUT, Attendance, Deadlines
from strategy.exchange import Exchange
from strategy.identity import PartitionPins
from strategy.instance import InstanceSettings
from strategy.validation import check_profile, error_summary, exclude
from task.protocol import (
    PROFILE_QUERY,
    ProfileQuery,
    ProfileReport,
    ReplyError,
    check_query_reply,
    profile_fields,
)

# Seconds between checks for connecting nodes.
NODE_POLL_S = 1.0
# Node id -> profile report, in partition-id order.
Profiles = dict[int, ProfileReport]


@dataclass
class ProfileQueryOut:
    """The profile reports of ``server_round`` on their way.

    Attributes
    ----------
    node_ids
        The nodes sent a ``query.profile`` (on ``exchange``).
    carried
        The train replies that carry a report, by node (:meth:`ProfileCollector.carry`).
    """

    server_round: int
    node_ids: list[int]
    exchange: Exchange
    carried: dict[int, Message] = field(default_factory=dict)


@dataclass
class ProfileCollector:
    """Asks the devices for their profiles and checks the reports.

    Parameters
    ----------
    settings
        What the server knows besides the reports (to check them).
    min_nodes
        Nodes to wait for before the first round (at most ``deadlines.connect_s`` seconds).
    deadlines
        How long a phase waits for its replies (:class:`~strategy.deadlines.Deadlines`).
    pins
        Which node may report which partition (:class:`~strategy.identity.PartitionPins`).

    Attributes
    ----------
    partitions
        The partition id each node reported last, to name a node that stops answering.
    attendance
        Which nodes replied in each round; the silent ones are dropped and not asked again.
    """

    settings: InstanceSettings
    min_nodes: int = 1
    deadlines: Deadlines = field(default_factory=Deadlines)
    pins: PartitionPins = field(default_factory=PartitionPins)
    partitions: dict[int, int] = field(default_factory=dict)
    attendance: Attendance = field(default_factory=Attendance)
    _nodes_awaited: bool = False

    def __post_init__(self) -> None:
        self.attendance.max_silent_rounds = self.deadlines.max_silent_rounds

    def ask(self, grid: Grid, server_round: int, carriers: Iterable[int] = ()) -> ProfileQueryOut:
        """Push the ``query.profile`` of ``server_round`` to every connected node but ``carriers``.

        ``carriers`` are the nodes whose train reply carries the report (:meth:`carry`).
        """
        carriers = set(carriers)
        node_ids = [n for n in self._await_nodes(grid, server_round) if n not in carriers]
        exchange = Exchange.push(grid, self._queries(node_ids, server_round))
        return ProfileQueryOut(server_round, node_ids, exchange)

    def carry(self, asked: ProfileQueryOut, replies: Mapping[int, Message]) -> None:
        """Keep those of the carriers' train ``replies`` that carry a report."""
        for node_id, reply in replies.items():
            if reply.has_content() and profile_fields(reply.content):
                asked.carried[node_id] = reply

    def ask_missing(self, grid: Grid, asked: ProfileQueryOut) -> None:
        """Bring ``asked`` up to the nodes connected now.

        A carried report of a node that is gone is dropped. The connected nodes that ``asked``
        has no report on the way from are queried: a carrier whose train reply did not come
        or had no report, and a node that connected since.
        """
        connected = self._connected(grid)
        for node_id in set(asked.carried) - set(connected):
            del asked.carried[node_id]
        awaited = set(asked.node_ids) | set(asked.carried)
        missing = [n for n in connected if n not in awaited]
        asked.exchange.push_more(self._queries(missing, asked.server_round))
        asked.node_ids += missing

    @staticmethod
    def _queries(node_ids: Iterable[int], server_round: int) -> list[Message]:
        """Return the ``query.profile`` messages of ``server_round`` to ``node_ids``."""
        query = ProfileQuery(server_round).to_record()
        return [
            Message(query, dst_node_id=n, message_type=PROFILE_QUERY, group_id=str(server_round))
            for n in node_ids
        ]

    def collect(self, asked: ProfileQueryOut) -> tuple[Profiles, dict[str, str]]:
        """Wait for the replies to ``asked``; return the usable reports and the devices left out.

        The wait ends at the round timeout, or a grace period after a quorum of the round's
        devices (carriers included) is in. A device is left out for no reply by then, an
        error reply, a report that fails :func:`~strategy.validation.check_profile`, or one
        that :class:`~strategy.identity.PartitionPins` refuses (another node's partition, a
        wrong size); ``excluded`` names it by partition id (``node <id>`` if unknown). The
        devices dropped for silence are listed too.
        """
        replies = {**self._receive(asked), **asked.carried}
        self.attendance.asked(asked.node_ids, replies)
        replies = {n: r for n, r in replies.items() if n not in self.attendance.dropped}
        missing = GRACE_OVER if asked.exchange.cut_short else TIMED_OUT
        lost = {n: missing for n in asked.node_ids if n not in replies}
        checked, excluded = self._checked(replies, lost, set(asked.carried))
        connected = set(asked.exchange.grid.get_node_ids())
        profiles, refused = self.pins.admit(checked, connected)
        for node_id, reason in refused.items():  # named by what the server knows of it
            exclude(excluded, self._label(node_id), node_id, reason)
        self._exclude_lost(excluded, lost, profiles)
        self.partitions.update({n: p.partition_id for n, p in profiles.items()})
        for node_id in sorted(self.attendance.dropped & connected):
            excluded[self._label(node_id)] = self._dropped_reason()
        return dict(sorted(profiles.items(), key=lambda item: item[1].partition_id)), excluded

    def _receive(self, asked: ProfileQueryOut) -> dict[int, Message]:
        """Pull the replies to ``asked``'s queries until the deadlines say stop."""
        deadlines = self.deadlines
        quorum = deadlines.quorum_of(len(asked.node_ids) + len(asked.carried))
        if quorum is not None:
            quorum = max(0, quorum - len(asked.carried))
        return asked.exchange.receive(deadlines.round_s, quorum, deadlines.grace_s)

    def _checked(
        self, replies: Mapping[int, Message], lost: dict[int, str], carried: set[int]
    ) -> tuple[Profiles, dict[str, str]]:
        """Return the replies' reports that pass the checks, and the devices they exclude.

        A query reply must hold its report alone; the ``carried`` ones are train replies,
        whose records :class:`~task.protocol.TrainReply` checks. An error reply goes to
        ``lost`` (named by the partition its node reported before).
        """
        profiles: Profiles = {}
        excluded: dict[str, str] = {}
        for node_id, reply in replies.items():
            if reply.has_error():
                lost[node_id] = f"error: {error_summary(reply.error.reason)}"
                continue
            fields = profile_fields(reply.content)
            try:
                if node_id not in carried:
                    check_query_reply(reply.content)
                profiles[node_id] = check_profile(fields, self.settings)
            except ReplyError as exc:
                device = fields.get("partition-id")
                label = str(device) if type(device) is int else f"node {node_id}"
                exclude(excluded, label, node_id, str(exc))
        return profiles, excluded

    def close_round(self, server_round: int) -> None:
        """End the round's attendance; drop the nodes silent for too long, with a warning."""
        for node_id in self.attendance.close_round():
            log(
                WARNING,
                "round %d: device %s %s",
                server_round,
                self._label(node_id),
                self._dropped_reason(),
            )

    def _dropped_reason(self) -> str:
        """Say why a dropped node is no longer asked."""
        rounds = self.deadlines.max_silent_rounds
        return f"dropped: no reply in {rounds} rounds in a row"

    def _label(self, node_id: int) -> str:
        """Name a node by the partition it reported last (``node <id>`` if none)."""
        pid = self.partitions.get(node_id)
        return f"node {node_id}" if pid is None else str(pid)

    def _await_nodes(self, grid: Grid, server_round: int) -> list[int]:
        """Return the connected nodes not dropped; the first time, once ``min_nodes`` are.

        Later rounds go on at once with the nodes connected then, unlike Flower's
        ``sample_nodes``, which blocks until ``min_nodes`` are: a device that dropped out
        never holds the run up, and one that came back takes part again.

        Raises
        ------
        RuntimeError
            If no node is connected.
        """
        node_ids = self._connected(grid)
        if not self._nodes_awaited:
            deadline = time.monotonic() + self.deadlines.connect_s
            while len(node_ids) < self.min_nodes and time.monotonic() < deadline:
                time.sleep(NODE_POLL_S)
                node_ids = self._connected(grid)
            self._nodes_awaited = True
        if not node_ids:
            raise RuntimeError(f"round {server_round}: no node connected")
        if len(node_ids) < self.min_nodes:
            log(WARNING, "round %d: %d nodes connected", server_round, len(node_ids))
        return node_ids

    def _connected(self, grid: Grid) -> list[int]:
        """Return the connected nodes that are not dropped."""
        return [n for n in grid.get_node_ids() if n not in self.attendance.dropped]

    def _exclude_lost(
        self, excluded: dict[str, str], lost: Mapping[int, str], profiles: Profiles
    ) -> None:
        """Exclude the nodes that sent no profile, named by the partition they reported before.

        A node never heard from is named ``node <id>``. A node whose partition another node
        reports this round is the old node id of a device that came back (asked ahead,
        before it dropped out): the device takes part, so it is only logged.
        """
        reported = {p.partition_id for p in profiles.values()}
        for node_id, reason in lost.items():
            pid = self.partitions.get(node_id)
            if pid in reported:
                log(
                    INFO,
                    "node %d gone (%s): device %s is back as another node",
                    node_id,
                    reason,
                    pid,
                )
                continue
            exclude(excluded, self._label(node_id), node_id, reason)
