"""Step 1 of a round: every connected device's profile, checked; the usable reports kept.

A device that trains in a round reports its profile for the next one in its train reply
(``profile-round``); the others are sent a ``query.profile``. Either way the report is the
same, so the schedule does not depend on how it came.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from logging import INFO, WARNING

from flwr.app import Message
from flwr.serverapp import Grid
from flwr.supercore import log

from strategy.exchange import Exchange
from strategy.instance import InstanceSettings
from strategy.validation import check_profile, error_summary, exclude
from task.protocol import PROFILE_QUERY, ProfileQuery, ProfileReport, ReplyError, profile_fields

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
        Nodes to wait for before the first round (at most ``timeout`` seconds).
    timeout
        Seconds to wait for the nodes before the first round and for the replies.

    Attributes
    ----------
    partitions
        The partition id each node reported last, to name a node that stops answering.
    """

    settings: InstanceSettings
    min_nodes: int = 1
    timeout: float = 3600.0
    partitions: dict[int, int] = field(default_factory=dict)
    _nodes_awaited: bool = False

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
        connected = list(grid.get_node_ids())
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

        A device is left out for no reply before the timeout, an error reply, a report that
        fails :func:`~strategy.validation.check_profile`, or a partition id claimed twice;
        ``excluded`` names it by partition id (``node <id>`` if unknown).
        """
        replies = {**asked.exchange.receive(self.timeout), **asked.carried}
        profiles: Profiles = {}
        excluded: dict[str, str] = {}
        lost = {n: "no reply before the timeout" for n in asked.node_ids if n not in replies}
        for node_id, reply in replies.items():
            if reply.has_error():
                lost[node_id] = f"error: {error_summary(reply.error.reason)}"
                continue
            fields = profile_fields(reply.content)
            try:
                profiles[node_id] = check_profile(fields, self.settings)
            except ReplyError as exc:
                device = fields.get("partition-id")
                label = str(device) if type(device) is int else f"node {node_id}"
                exclude(excluded, label, node_id, str(exc))
        claims = Counter(p.partition_id for p in profiles.values())
        for node_id, report in list(profiles.items()):
            pid = report.partition_id
            if claims[pid] > 1:
                exclude(excluded, str(pid), node_id, f"partition id {pid} claimed twice")
                del profiles[node_id]
        self._exclude_lost(excluded, lost, profiles)
        self.partitions.update({n: p.partition_id for n, p in profiles.items()})
        return dict(sorted(profiles.items(), key=lambda item: item[1].partition_id)), excluded

    def _await_nodes(self, grid: Grid, server_round: int) -> list[int]:
        """Return the connected nodes; the first time, once ``min_nodes`` are (or on timeout).

        Later rounds go on at once with the nodes connected then, unlike Flower's
        ``sample_nodes``, which blocks until ``min_nodes`` are: a device that dropped out
        never holds the run up, and one that came back takes part again.

        Raises
        ------
        RuntimeError
            If no node is connected.
        """
        node_ids = list(grid.get_node_ids())
        if not self._nodes_awaited:
            deadline = time.monotonic() + self.timeout
            while len(node_ids) < self.min_nodes and time.monotonic() < deadline:
                time.sleep(NODE_POLL_S)
                node_ids = list(grid.get_node_ids())
            self._nodes_awaited = True
        if not node_ids:
            raise RuntimeError(f"round {server_round}: no node connected")
        if len(node_ids) < self.min_nodes:
            log(WARNING, "round %d: %d nodes connected", server_round, len(node_ids))
        return node_ids

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
            exclude(excluded, f"node {node_id}" if pid is None else str(pid), node_id, reason)
