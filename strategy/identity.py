"""Which node holds which partition: the server's own map from node to data.

A device names its partition in its profile report, and the server does not take that on
trust. The first node to report a partition is pinned to it for the run (or the operator
pins every node with a ``node-partitions`` file); a report of a partition from another node
is refused while the pinned node is connected. A device's dataset size ``num-examples`` must
be its partition's size under the run's own cut of the dataset, when the server can make
it, else the size its partition was first reported with.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from logging import INFO
from pathlib import Path

from flwr.supercore import log

from task.errors import ConfigError
from task.protocol import ProfileReport

# The partition sizes of the run's cut into K partitions, by K (None: the server cannot tell).
PartitionSizes = Callable[[int], Sequence[int] | None]


def read_node_partitions(path: str) -> dict[int, int]:
    """Read a ``node-partitions`` file: a JSON object from node id to partition id.

    Raises
    ------
    ConfigError
        Field ``node-partitions``: the file cannot be read, is not such an object, or pins
        two nodes to one partition.
    """
    try:
        raw = json.loads(Path(path).expanduser().read_text())
    except (OSError, ValueError, RecursionError) as exc:
        raise ConfigError("node-partitions", f"{path}: {exc}") from None
    if not isinstance(raw, dict):
        raise ConfigError("node-partitions", f"{path}: expected an object of node id: partition")
    pins: dict[int, int] = {}
    for node, pid in raw.items():
        if not (node.isdigit() and type(pid) is int and pid >= 0):
            raise ConfigError("node-partitions", f"{path}: bad entry {node!r}: {pid!r}")
        pins[int(node)] = pid
    if len(set(pins.values())) < len(pins):
        raise ConfigError("node-partitions", f"{path}: a partition is given to two nodes")
    return pins


@dataclass
class PartitionPins:
    """The node each partition is pinned to, and the size each partition must report.

    Parameters
    ----------
    assigned
        The operator's map from node id to partition id (``node-partitions``); a node not
        in it is refused. Empty: a partition is pinned to the first node that reports it.
    sizes
        The sizes of the run's own cut into K partitions (:data:`PartitionSizes`); None
        checks a partition's size against the one it was first reported with.

    Attributes
    ----------
    nodes
        Partition id -> the node pinned to it.
    examples
        Partition id -> its size, where :attr:`sizes` cannot tell.
    num_partitions
        The number of partitions K, as most of the first reports give it (every device
        must report the same).
    """

    assigned: Mapping[int, int] = field(default_factory=dict)
    sizes: PartitionSizes | None = None
    nodes: dict[int, int] = field(default_factory=dict)
    examples: dict[int, int] = field(default_factory=dict)
    num_partitions: int | None = None

    def admit(
        self, reports: Mapping[int, ProfileReport], connected: Collection[int]
    ) -> tuple[dict[int, ProfileReport], dict[int, str]]:
        """Split the reports (by node) into those admitted and the refused ones with why.

        The first reports fix K, as most of them report it. A report is refused if
        :meth:`refusal` says so, or if its partition is pinned to
        another node that is still ``connected``, or if several unpinned nodes claim it at
        once (none is pinned then). A pinned node that is gone gives its partition up to
        the one node that reports it now (the device, back as a new node).
        """
        if self.num_partitions is None and reports:
            counts = Counter(r.num_partitions for r in reports.values())
            self.num_partitions = counts.most_common(1)[0][0]
        refused = {}
        claims: dict[int, list[int]] = defaultdict(list)
        for node_id, report in reports.items():
            if (reason := self.refusal(node_id, report)) is not None:
                refused[node_id] = reason
            else:
                claims[report.partition_id].append(node_id)
        admitted = {}
        for pid, nodes in claims.items():
            keep, reason = self._claimant(pid, nodes, connected)
            for node_id in nodes:
                if node_id == keep:
                    admitted[node_id] = reports[node_id]
                else:
                    refused[node_id] = reason
        for node_id, report in admitted.items():
            self._pin(node_id, report)
        return admitted, refused

    def refusal(self, node_id: int, report: ProfileReport) -> str | None:
        """Say why ``report`` cannot come from ``node_id`` whoever else reports, None if it can.

        The node must be the operator's for that partition, if there is a map; the report's
        K that of the others; its partition id below K; and its size the partition's.
        """
        pid, count = report.partition_id, report.num_partitions
        if self.assigned and self.assigned.get(node_id) != pid:
            owner = self.assigned.get(node_id)
            given = "no partition" if owner is None else f"partition {owner}"
            return f"claims partition {pid}, but node-partitions gives node {node_id} {given}"
        if self.num_partitions is not None and count != self.num_partitions:
            return f"num-partitions {count}, but the devices have {self.num_partitions}"
        if pid >= count:
            return f"partition-id {pid} is not below num-partitions {count}"
        expected = self._size(pid, count)
        if expected is not None and report.num_examples != expected:
            return f"num-examples {report.num_examples}, but partition {pid} holds {expected}"
        return None

    def _size(self, pid: int, count: int) -> int | None:
        """Return partition ``pid``'s size of ``count``, None if not known yet."""
        sizes = self.sizes(count) if self.sizes is not None else None
        return self.examples.get(pid) if sizes is None else int(sizes[pid])

    def _claimant(
        self, pid: int, nodes: list[int], connected: Collection[int]
    ) -> tuple[int | None, str]:
        """Return the node of ``nodes`` that keeps partition ``pid`` (None: none), and why not."""
        pinned = self.nodes.get(pid)
        if pinned in nodes:
            return pinned, f"partition {pid} is pinned to node {pinned}"
        if pinned is not None and pinned in connected:
            return None, f"partition {pid} is pinned to node {pinned}"
        if len(nodes) > 1:
            return None, f"partition id {pid} claimed by {len(nodes)} nodes at once"
        if pinned is not None:
            log(INFO, "device %d is back as node %d (node %d is gone)", pid, nodes[0], pinned)
        return nodes[0], ""

    def _pin(self, node_id: int, report: ProfileReport) -> None:
        """Pin ``report``'s partition and its size to ``node_id``."""
        self.nodes[report.partition_id] = node_id
        self.examples.setdefault(report.partition_id, report.num_examples)
