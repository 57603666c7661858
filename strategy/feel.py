"""The FEEL strategy: query profiles, schedule, train with per-device batches, server SGD."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import Future
from dataclasses import dataclass, field, replace
from functools import cached_property
from logging import INFO, WARNING
from typing import Any

import numpy as np
from flwr.app import (
    ArrayRecord,
    ConfigRecord,
    Message,
    MessageType,
    MetricRecord,
    RecordDict,
)
from flwr.serverapp import Grid
from flwr.serverapp.strategy import FedAvg, Result
from flwr.supercore import log

from scheduler import Allocation, Instance, Policy, restrict
from strategy.aggregation import batch_weights, scaled_learning_rate, sgd_step, weighted_average
from strategy.instance import InstanceSettings, build_instance
from strategy.phases import PhaseClock
from strategy.record import LatencySplit, RoundRecord
from strategy.validation import (
    ReplyError,
    TooFewDevicesError,
    check_profile,
    check_train_reply,
    error_summary,
)
from task.arrays import array_record, record_views

PROFILE_QUERY = "query.profile"
# A profile query's outcome: the nodes asked, and their replies by node id.
_Asked = tuple[list[int], dict[int, Message]]
# Seconds between checks for connecting nodes.
NODE_POLL_S = 1.0


class TrainingComplete(Exception):  # noqa: N818 (a signal that training ended, not an error)
    """Raised by ``configure_train`` when the strategy has nothing left to train.

    The simulated-time budget is spent, or a one-shot scheme (individual learning) has
    made its exchange. :func:`server.app.run` ends the run on it.
    """


def reply_sources(messages: Iterable[Message], replies: Iterable[Message]) -> dict[int, Message]:
    """Return the replies to ``messages`` (as sent) keyed by the node each one answers for.

    That is the destination of the message replied to: the error reply the SuperLink makes
    for a node that stopped sending heartbeats (Node Unavailable) comes from the SuperLink's
    own node id, not the node's.
    """
    destination = {m.metadata.message_id: m.metadata.dst_node_id for m in messages}
    return {
        destination.get(r.metadata.reply_to_message_id, r.metadata.src_node_id): r for r in replies
    }


@dataclass(frozen=True)
class _RoundPlan:
    """The schedule of the round in flight; devices in partition-id order."""

    node_ids: list[int]
    partition_ids: list[int]
    instance: Instance
    allocation: Allocation
    arrays: ArrayRecord
    excluded: dict[str, str] = field(default_factory=dict)

    @cached_property
    def model(self) -> dict[str, np.ndarray]:
        """The global model sent this round, decoded once (for resnet18, 45 MB)."""
        return record_views(self.arrays)


@dataclass(frozen=True)
class _TrainReply:
    """The parts of one train reply the update needs."""

    node_id: int
    batch_size: int
    loss: float
    arrays: dict[str, np.ndarray]
    buffers: dict[str, np.ndarray]


class _Outbox:
    """A round's messages that call ``taken`` once a grid has iterated through all of them.

    Sized and iterable again, as grids expect: Flower's HTTP grid iterates the messages
    twice (check, then push), and ``taken`` runs after the first pass.
    """

    def __init__(self, messages: list[Message], taken: Callable[[], None]) -> None:
        self._messages = messages
        self._taken: Callable[[], None] | None = taken

    def __len__(self) -> int:
        return len(self._messages)

    def __iter__(self) -> Iterator[Message]:
        yield from self._messages
        taken, self._taken = self._taken, None
        if taken is not None:
            taken()


class FeelStrategy(FedAvg):
    """Federated edge learning with gradient averaging (Sec. II-A, steps 1-5).

    Each round queries every node's profile (``query.profile``; from round 2 on, sent as
    soon as the round before has its replies), lets ``policy`` pick the batch sizes and
    TDMA slots, sends each node the global model and its own batch size, averages the
    gradients weighted by batch size (Eq. 1), applies server-side SGD with
    eta = eta0 * sqrt(B / B0) (Sec. III-A) and averages BatchNorm statistics with the same
    weights. A simulated clock advances by the allocation's round latency (Eq. 15).
    :attr:`records` holds one :class:`RoundRecord` per finished round.

    Parameters
    ----------
    policy
        Scheduler policy.
    settings
        Instance settings besides the devices' reports (gradient size, frames, bounds, channel).
    learning_rate
        Base learning rate eta0.
    base_batch
        Base global batch size B0 at which the learning rate is eta0.
    gradient_bits
        Bits per gradient element b sent to the clients (they quantize below 32).
    min_nodes
        Nodes to wait for before the first round (at most ``timeout`` seconds).
    timeout
        Seconds to wait for the nodes before the first round and for the profile replies;
        pass it to :meth:`start` too, for the train replies. A round goes on with the
        devices that answered in time.
    time_budget_s
        Simulated seconds after which no further round starts (0: no budget).

    Attributes
    ----------
    min_devices
        Usable devices a round needs (1 unless set, e.g. from run-config ``min-devices``):
        with fewer left after excluding faulty replies (:mod:`strategy.validation`) the
        round is not applied and :class:`TooFewDevicesError` stops the run.
    cursors
        Examples each partition has consumed so far; sent with its train message as
        ``sample-cursor``, so the devices keep no state and a resumed run samples the same.

    Subclasses (the model-based schemes) change the train message type, the reply's array
    record (:attr:`update_key`) and the hooks ``_select``, ``_allocate``, ``_arrays_for`` and
    ``_restrict``.
    """

    message_type = MessageType.TRAIN
    update_key = "grads"

    def __init__(
        self,
        policy: Policy,
        settings: InstanceSettings,
        learning_rate: float,
        base_batch: int,
        gradient_bits: int = 32,
        min_nodes: int = 1,
        timeout: float = 3600.0,
        time_budget_s: float = 0.0,
    ) -> None:
        super().__init__(
            fraction_train=1.0,
            fraction_evaluate=0.0,
            min_train_nodes=min_nodes,
            min_available_nodes=min_nodes,
            weighted_by_key="batch-size",
        )
        self.policy = policy
        self.settings = settings
        self.learning_rate = learning_rate
        self.base_batch = base_batch
        self.gradient_bits = gradient_bits
        self.timeout = timeout
        self.time_budget_s = time_budget_s
        self.sim_time_s = 0.0
        self.records: list[RoundRecord] = []
        self.clock = PhaseClock()
        self.min_devices = 1
        self.cursors: dict[int, int] = {}
        self._plan: _RoundPlan | None = None
        self._nodes_awaited = False
        self._train_messages: list[Message] = []
        # Partition id each node reported last, to name a node that stops answering.
        self._partitions: dict[int, int] = {}
        # Rounds :meth:`start` has yet to begin, and the profile query sent ahead for one.
        self._rounds_to_start = 0
        self._asked: tuple[int, Future[_Asked]] | None = None
        self._grid: Grid | None = None

    def summary(self) -> None:
        """Log the FEEL configuration after FedAvg's."""
        super().summary()
        log(INFO, "\t└──> FEEL:")
        log(INFO, "\t\t├── Policy: %s", self.policy.name)
        log(INFO, "\t\t├── Scenario: %s", self.settings.scenario)
        log(INFO, "\t\t├── Gradient size: %.0f bits", self.settings.gradient_size_bits)
        log(INFO, "\t\t└── Learning rate: %g * sqrt(B / %d)", self.learning_rate, self.base_batch)

    def state_dict(self) -> dict[str, Any]:
        """Return what a resumed run needs (JSON-ready): the clock, the cursors, the records.

        The server update is plain SGD (Eq. 2): there is no optimizer state.
        """
        return {
            "sim_time_s": self.sim_time_s,
            "cursors": {str(pid): cursor for pid, cursor in self.cursors.items()},
            "records": [record.to_dict() for record in self.records],
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore the state of :meth:`state_dict`."""
        self.sim_time_s = float(state["sim_time_s"])
        self.cursors = {int(pid): int(cursor) for pid, cursor in state["cursors"].items()}
        self.records = [RoundRecord(**record) for record in state["records"]]

    @property
    def complete(self) -> bool:
        """Whether training is over: the simulated clock has reached ``time_budget_s``."""
        return bool(self.time_budget_s) and self.sim_time_s >= self.time_budget_s

    def start(
        self, grid: Grid, initial_arrays: ArrayRecord, num_rounds: int = 3, **kwargs: Any
    ) -> Result:
        """Run Flower's round loop (``FedAvg.start``) for ``num_rounds`` rounds.

        Knowing the rounds lets each round but the last ask the next round's profiles as
        soon as its train messages are out (:meth:`_push_then_ask_ahead`).
        """
        self._rounds_to_start = num_rounds
        return super().start(grid, initial_arrays, num_rounds, **kwargs)

    def configure_train(
        self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid
    ) -> Iterable[Message]:
        """Query the profiles, schedule the round and build one train message per device.

        Raises
        ------
        TrainingComplete
            Once the simulated clock has reached ``time_budget_s``.
        TooFewDevicesError
            If fewer than ``min_devices`` sent a usable profile.
        """
        if self.complete:
            raise TrainingComplete(
                f"simulated time {self.sim_time_s:.2f} s reached the budget "
                f"{self.time_budget_s:g} s"
            )
        self.clock.mark("start")
        self._rounds_to_start -= 1
        self._grid = grid
        profiles, excluded = self._query_profiles(server_round, grid)
        self.clock.mark("query")
        self._require_devices(server_round, len(profiles), excluded)
        profiles = self._select(profiles)
        instance = Instance.from_dict(
            build_instance(list(profiles.values()), self._round_settings(profiles.values()))
        )
        allocation = self._allocate(instance, list(profiles.values()), server_round)
        self._plan = _RoundPlan(
            node_ids=list(profiles),
            partition_ids=[int(p["partition-id"]) for p in profiles.values()],
            instance=instance,
            allocation=allocation,
            arrays=arrays,
            excluded=excluded,
        )
        log(INFO, "configure_train: batch sizes %s", allocation.batch_sizes.tolist())
        messages = [
            Message(
                RecordDict(
                    {
                        self.arrayrecord_key: self._arrays_for(partition_id, arrays),
                        self.configrecord_key: self._with_cursor(
                            self._train_config(config, server_round, batch), partition_id
                        ),
                    }
                ),
                dst_node_id=node_id,
                message_type=self.message_type,
                group_id=str(server_round),
            )
            for node_id, partition_id, batch in zip(
                self._plan.node_ids, self._plan.partition_ids, allocation.batch_sizes, strict=True
            )
        ]
        for partition_id, batch in zip(
            self._plan.partition_ids, allocation.batch_sizes, strict=True
        ):
            self.cursors[partition_id] = self.cursors.get(partition_id, 0) + int(batch)
        self._train_messages = messages
        self.clock.mark("schedule")
        return self._push_then_ask_ahead(messages, server_round)

    def _push_then_ask_ahead(self, messages: list[Message], server_round: int) -> _Outbox:
        """Return the train messages; once the grid has taken them all, ask the next profiles.

        The Simulation Engine's grid stores each message as it takes it, so every device has
        its train message before the next round's query: it answers the query once its
        gradient is sent, and the server has the profiles when the round ends. Only when
        another round surely follows (:meth:`_known_to_go_on`); otherwise :meth:`_advance`
        asks, if need be.
        """

        def ask_ahead() -> None:
            if self._known_to_go_on():
                self._ask_ahead(server_round + 1)

        return _Outbox(messages, ask_ahead)

    def _known_to_go_on(self) -> bool:
        """Whether a round follows the planned one: rounds remain and its latency fits the budget.

        Leaving devices out of a round can only shorten it (:meth:`_restrict`).
        """
        return self._goes_on(float(self._plan.allocation.round_latency_s))

    def _goes_on(self, latency_s: float = 0.0) -> bool:
        """Whether a round follows once the clock has moved ``latency_s`` more."""
        if self._rounds_to_start <= 0 or self.complete:
            return False
        budget = self.time_budget_s
        return not (budget and self.sim_time_s + latency_s >= budget)

    def _with_cursor(self, config: ConfigRecord, partition_id: int) -> ConfigRecord:
        """Return ``config`` with the partition's sampling cursor (``sample-cursor``)."""
        return ConfigRecord({**config, "sample-cursor": self.cursors.get(partition_id, 0)})

    def _require_devices(self, server_round: int, usable: int, excluded: Mapping) -> None:
        """Stop the run if fewer than ``min_devices`` devices are usable this round."""
        if usable < self.min_devices:
            raise TooFewDevicesError(
                f"round {server_round}: {usable} usable device(s), fewer than min-devices "
                f"{self.min_devices} (excluded: {dict(excluded)}); the round is not applied "
                "and the run stops"
            )

    def _round_settings(self, profiles: Iterable[Mapping[str, Any]]) -> InstanceSettings:
        """Return the settings with B^max capped at the smallest local dataset (B_k <= N_k)."""
        smallest = min(int(p["num-examples"]) for p in profiles)
        return replace(self.settings, max_batch=min(self.settings.max_batch, smallest))

    def _select(self, profiles: dict[int, dict[str, Any]]) -> dict[int, dict[str, Any]]:
        """Return the devices (node id -> profile) that train this round: all of them."""
        return profiles

    def _allocate(
        self, instance: Instance, profiles: list[dict[str, Any]], server_round: int
    ) -> Allocation:
        """Return the round's batches and slots: the policy's allocation of ``instance``."""
        return self.policy.allocate(instance, round_index=server_round - 1)

    def _arrays_for(self, partition_id: int, arrays: ArrayRecord) -> ArrayRecord:
        """Return the model sent to ``partition_id``: the global one."""
        return arrays

    def _restrict(self, indices: list[int]) -> Allocation:
        """Return the planned allocation re-evaluated for the devices at ``indices``."""
        return restrict(self._plan.instance, self._plan.allocation, indices)

    def _train_config(
        self, config: ConfigRecord, server_round: int, batch_size: int
    ) -> ConfigRecord:
        """Return one device's train config: the shared config plus its own batch size."""
        return ConfigRecord(
            {
                **config,
                "server-round": server_round,
                "batch-size": int(batch_size),
                "gradient-bits": self.gradient_bits,
            }
        )

    def _await_nodes(self, server_round: int, grid: Grid) -> list[int]:
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
            while len(node_ids) < self.min_available_nodes and time.monotonic() < deadline:
                time.sleep(NODE_POLL_S)
                node_ids = list(grid.get_node_ids())
            self._nodes_awaited = True
        if not node_ids:
            raise RuntimeError(f"round {server_round}: no node connected")
        if len(node_ids) < self.min_available_nodes:
            log(WARNING, "round %d: %d nodes connected", server_round, len(node_ids))
        return node_ids

    def _query_profiles(
        self, server_round: int, grid: Grid
    ) -> tuple[dict[int, dict[str, Any]], dict[str, str]]:
        """Ask every node for its profile.

        Returns node id -> usable profile in partition-id order, and the devices excluded
        (no reply before the timeout, an error reply, a report that fails
        :func:`~strategy.validation.check_profile`, or a partition id claimed twice), keyed
        by partition id (``node <id>`` if unknown).
        """
        node_ids, replies = self._profile_replies(server_round, grid)
        profiles: dict[int, dict[str, Any]] = {}
        excluded: dict[str, str] = {}
        lost = {n: "no reply before the timeout" for n in node_ids if n not in replies}
        for node_id, reply in replies.items():
            if reply.has_error():
                lost[node_id] = f"error: {error_summary(reply.error.reason)}"
                continue
            report = dict(reply.content.config_records.get("profile", {}))
            try:
                check_profile(report, self.settings)
            except ReplyError as exc:
                device = report.get("partition-id")
                label = str(device) if type(device) is int else f"node {node_id}"
                self._exclude(excluded, node_id, str(exc), label)
                continue
            profiles[node_id] = report
        claims = Counter(p["partition-id"] for p in profiles.values())
        for node_id, report in list(profiles.items()):
            pid = report["partition-id"]
            if claims[pid] > 1:
                self._exclude(excluded, node_id, f"partition id {pid} claimed twice", str(pid))
                del profiles[node_id]
        self._exclude_lost(excluded, lost, profiles)
        self._partitions.update({n: p["partition-id"] for n, p in profiles.items()})
        return (
            dict(sorted(profiles.items(), key=lambda item: item[1]["partition-id"])),
            excluded,
        )

    def _profile_replies(self, server_round: int, grid: Grid) -> _Asked:
        """Return the nodes asked for their ``server_round`` profile and their replies by node.

        The answers to a query sent ahead (:meth:`_ask_ahead`) if there is one, else
        those of a query sent now.
        """
        asked, self._asked = self._asked, None
        if asked is not None and asked[0] == server_round:
            return asked[1].result()
        return self._ask_profiles(server_round, grid)

    def _ask_profiles(self, server_round: int, grid: Grid) -> _Asked:
        """Send every connected node the ``query.profile`` of ``server_round``; wait for replies."""
        node_ids = self._await_nodes(server_round, grid)
        query = RecordDict({"config": ConfigRecord({"server-round": server_round})})
        messages = [
            Message(query, dst_node_id=n, message_type=PROFILE_QUERY, group_id=str(server_round))
            for n in node_ids
        ]
        return node_ids, reply_sources(
            messages, grid.send_and_receive(messages, timeout=self.timeout)
        )

    def _ask_ahead(self, server_round: int) -> None:
        """Send the ``server_round`` profile query now, in a background thread.

        The devices answer while the round before ends, so the next round starts with its
        profiles in. The reports are the same: a device's fading and faults are keyed by
        the round, not by when it is asked. The thread is a daemon: a run that stops early
        does not wait for its replies.
        """
        future: Future[_Asked] = Future()
        grid = self._grid

        def ask() -> None:
            try:
                future.set_result(self._ask_profiles(server_round, grid))
            except BaseException as exc:  # configure_train re-raises it
                future.set_exception(exc)

        threading.Thread(target=ask, name=f"profiles-{server_round}", daemon=True).start()
        self._asked = (server_round, future)

    def _exclude_lost(
        self, excluded: dict[str, str], lost: Mapping[int, str], profiles: Mapping[int, Any]
    ) -> None:
        """Exclude the nodes that sent no profile, named by the partition they reported before.

        A node never heard from is named ``node <id>``. A node whose partition another node
        reports this round is the old node id of a device that came back (asked ahead,
        before it dropped out): the device takes part, so it is only logged.
        """
        reported = {p["partition-id"] for p in profiles.values()}
        for node_id, reason in lost.items():
            pid = self._partitions.get(node_id)
            if pid in reported:
                log(
                    INFO,
                    "node %d gone (%s): device %s is back as another node",
                    node_id,
                    reason,
                    pid,
                )
                continue
            label = f"node {node_id}" if pid is None else str(pid)
            self._exclude(excluded, node_id, reason, label)

    def aggregate_train(
        self, server_round: int, replies: Iterable[Message]
    ) -> tuple[ArrayRecord | None, MetricRecord | None]:
        """Average the gradients (Eq. 1), take the SGD step (Eq. 2) and advance the clock.

        Raises
        ------
        TooFewDevicesError
            If fewer than ``min_devices`` devices returned a usable gradient.
        """
        results, excluded = self._train_results(server_round, replies)
        weights = batch_weights([r.batch_size for r in results])
        global_batch = sum(r.batch_size for r in results)
        learning_rate = scaled_learning_rate(self.learning_rate, global_batch, self.base_batch)
        train_loss = float(np.average([r.loss for r in results], weights=weights))
        record = self._advance(
            server_round,
            [r.node_id for r in results],
            excluded,
            (global_batch, learning_rate, train_loss),
        )
        gradient = weighted_average([r.arrays for r in results], weights)
        state = sgd_step(self._plan.model, gradient, learning_rate)
        state.update(self._averaged_buffers(results, weights, state))
        self._finish_round(record)
        return array_record(state), record.to_metric_record()

    def _train_results(
        self, server_round: int, replies: Iterable[Message]
    ) -> tuple[list[_TrainReply], dict[str, str]]:
        """Check the train replies (:func:`~strategy.validation.check_train_reply`).

        Returns the usable replies in partition-id order and, for every other device (at
        the profile query too), its partition id (as a string) and why it was left out: an
        error reply, no reply at all, a reply that fails the checks, or a split of the
        model between update and buffers unlike the other devices'.

        Raises
        ------
        TooFewDevicesError
            If fewer than ``min_devices`` replies are usable.
        """
        self.clock.mark("train")
        plan = self._plan
        by_node = reply_sources(self._train_messages, replies)
        results: list[_TrainReply] = []
        excluded = dict(plan.excluded)
        for node_id, assigned in zip(plan.node_ids, plan.allocation.batch_sizes, strict=True):
            reply = by_node.get(node_id)
            if reply is None:
                self._exclude(excluded, node_id, "no reply before the timeout")
                continue
            if reply.has_error():
                self._exclude(excluded, node_id, f"error: {error_summary(reply.error.reason)}")
                continue
            try:
                update = check_train_reply(
                    reply.content,
                    plan.model,
                    update_key=self.update_key,
                    weight_key=self.weighted_by_key,
                    assigned=int(assigned),
                )
            except ReplyError as exc:
                self._exclude(excluded, node_id, str(exc))
                continue
            results.append(
                _TrainReply(node_id, update.weight, update.loss, update.arrays, update.buffers)
            )
        layouts = Counter(frozenset(r.arrays) for r in results)
        common = layouts.most_common(1)[0][0] if results else frozenset()
        for r in results:
            if frozenset(r.arrays) != common:
                self._exclude(excluded, r.node_id, "splits the model unlike the other devices")
        results = [r for r in results if frozenset(r.arrays) == common]
        self._require_devices(server_round, len(results), excluded)
        # Partition ids in numeric order: the profile replies come in any order.
        return results, dict(sorted(excluded.items(), key=lambda item: (len(item[0]), item[0])))

    def _exclude(
        self, excluded: dict[str, str], node_id: int, reason: str, device: str | None = None
    ) -> None:
        """Record that the device on ``node_id`` is left out of this round, and warn.

        ``device`` names it in ``excluded``; by default its partition id in the plan.
        """
        if device is None:
            device = str(self._plan.partition_ids[self._plan.node_ids.index(node_id)])
        excluded[device] = reason
        log(WARNING, "round: device %s (node %d) excluded: %s", device, node_id, reason)

    def _finish_round(self, record: RoundRecord) -> None:
        """Keep the round's record once its update is applied."""
        self.clock.mark("aggregate")
        self.records.append(record)

    @staticmethod
    def _averaged_buffers(
        results: list[_TrainReply], weights: np.ndarray, state: dict[str, np.ndarray]
    ) -> dict[str, np.ndarray]:
        """Return the BatchNorm statistics averaged with the gradient weights (none if not sent)."""
        if not any(r.buffers for r in results):
            return {}
        averaged = weighted_average([r.buffers for r in results], weights)
        unknown = set(averaged) - set(state)
        if unknown:
            raise ValueError(f"buffers for unknown arrays {sorted(unknown)}")
        return averaged

    def _advance(
        self,
        server_round: int,
        participating_nodes: list[int],
        excluded: dict[str, str],
        update: tuple[int, float, float],
    ) -> RoundRecord:
        """Advance the simulated clock by the round latency (Eq. 15); return the round's record.

        ``update`` is the applied update's global batch, learning rate and training loss.
        If another round follows and its profile query is not out yet, it goes out now
        (:meth:`_ask_ahead`).

        The latency is that of the devices that took part, with their planned batches and
        slots: a device that failed or never answered does not hold the round up.
        """
        plan = self._plan
        global_batch, learning_rate, train_loss = update
        indices = sorted(plan.node_ids.index(n) for n in participating_nodes)
        allocation = plan.allocation
        if len(indices) < len(plan.node_ids):
            allocation = self._restrict(indices)
        split = LatencySplit.from_critical_path(allocation.critical_path)
        self.sim_time_s += float(allocation.round_latency_s)
        if self._asked is None and self._goes_on():
            self._ask_ahead(server_round + 1)
        return RoundRecord(
            round=server_round,
            policy=str(allocation.policy),
            sim_time_s=self.sim_time_s,
            round_latency_s=float(allocation.round_latency_s),
            compute_latency_s=split.compute_s,
            uplink_latency_s=split.uplink_s,
            downlink_latency_s=split.downlink_s,
            partition_ids=plan.partition_ids,
            participants=[plan.partition_ids[i] for i in indices],
            excluded=excluded,
            batch_sizes=[int(b) for b in plan.allocation.batch_sizes],
            uplink_slots_s=[float(t) for t in plan.allocation.uplink_slots_s],
            downlink_slots_s=[float(t) for t in plan.allocation.downlink_slots_s],
            global_batch=global_batch,
            learning_rate=learning_rate,
            efficiency=float(allocation.efficiency),
            train_loss=train_loss,
        )
