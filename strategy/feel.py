"""The FEEL strategy: query profiles, schedule, train with per-device batches, server SGD."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from logging import INFO, WARNING
from typing import Any

import numpy as np
from flwr.app import (
    Array,
    ArrayRecord,
    ConfigRecord,
    Message,
    MessageType,
    MetricRecord,
    RecordDict,
)
from flwr.serverapp import Grid
from flwr.serverapp.strategy import FedAvg
from flwr.serverapp.strategy.strategy_utils import sample_nodes
from flwr.supercore import log

from scheduler import Allocation, Instance, Policy, restrict
from strategy.aggregation import batch_weights, scaled_learning_rate, sgd_step, weighted_average
from strategy.instance import InstanceSettings, build_instance
from strategy.record import LatencySplit, RoundRecord

PROFILE_QUERY = "query.profile"


@dataclass(frozen=True)
class _RoundPlan:
    """The schedule of the round in flight; devices in partition-id order."""

    node_ids: list[int]
    partition_ids: list[int]
    instance: Instance
    allocation: Allocation
    arrays: ArrayRecord


@dataclass(frozen=True)
class _TrainReply:
    """The parts of one train reply the update needs."""

    node_id: int
    batch_size: int
    loss: float
    grads: dict[str, np.ndarray]
    buffers: dict[str, np.ndarray]


class FeelStrategy(FedAvg):
    """Federated edge learning with gradient averaging (Sec. II-A, steps 1-5).

    Each round queries every node's profile (``query.profile``), lets ``policy`` pick the
    batch sizes and TDMA slots, sends each node the global model and its own batch size,
    averages the gradients weighted by batch size (Eq. 1), applies server-side SGD with
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
        Nodes to wait for before the first round.
    timeout
        Seconds to wait for the profile replies.
    """

    def __init__(
        self,
        policy: Policy,
        settings: InstanceSettings,
        learning_rate: float,
        base_batch: int,
        gradient_bits: int = 32,
        min_nodes: int = 1,
        timeout: float = 3600.0,
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
        self.sim_time_s = 0.0
        self.records: list[RoundRecord] = []
        self._plan: _RoundPlan | None = None

    def summary(self) -> None:
        """Log the FEEL configuration after FedAvg's."""
        super().summary()
        log(INFO, "\t└──> FEEL:")
        log(INFO, "\t\t├── Policy: %s", self.policy.name)
        log(INFO, "\t\t├── Scenario: %s", self.settings.scenario)
        log(INFO, "\t\t├── Gradient size: %.0f bits", self.settings.gradient_size_bits)
        log(INFO, "\t\t└── Learning rate: %g * sqrt(B / %d)", self.learning_rate, self.base_batch)

    def configure_train(
        self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid
    ) -> Iterable[Message]:
        """Query the profiles, schedule the round and build one train message per device."""
        profiles = self._query_profiles(server_round, grid)
        instance = Instance.from_dict(build_instance(list(profiles.values()), self.settings))
        allocation = self.policy.allocate(instance, round_index=server_round - 1)
        self._plan = _RoundPlan(
            node_ids=list(profiles),
            partition_ids=[int(p["partition-id"]) for p in profiles.values()],
            instance=instance,
            allocation=allocation,
            arrays=arrays,
        )
        log(INFO, "configure_train: batch sizes %s", allocation.batch_sizes.tolist())
        return [
            Message(
                RecordDict(
                    {
                        self.arrayrecord_key: arrays,
                        self.configrecord_key: self._train_config(config, server_round, batch),
                    }
                ),
                dst_node_id=node_id,
                message_type=MessageType.TRAIN,
                group_id=str(server_round),
            )
            for node_id, batch in zip(self._plan.node_ids, allocation.batch_sizes, strict=True)
        ]

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

    def _query_profiles(self, server_round: int, grid: Grid) -> dict[int, dict[str, Any]]:
        """Ask every node for its profile; return node id -> profile in partition-id order.

        Raises
        ------
        RuntimeError
            If no node answers, or two nodes report the same partition id.
        """
        sample_size = max(len(list(grid.get_node_ids())), self.min_train_nodes)
        node_ids, _ = sample_nodes(grid, self.min_available_nodes, sample_size)
        query = RecordDict({"config": ConfigRecord({"server-round": server_round})})
        replies = grid.send_and_receive(
            [
                Message(
                    query, dst_node_id=n, message_type=PROFILE_QUERY, group_id=str(server_round)
                )
                for n in node_ids
            ],
            timeout=self.timeout,
        )
        profiles = {}
        for reply in replies:
            if reply.has_error():
                log(
                    WARNING,
                    "profile query: node %d failed: %s",
                    reply.metadata.src_node_id,
                    reply.error.reason,
                )
            else:
                profiles[reply.metadata.src_node_id] = dict(reply.content["profile"])
        if not profiles:
            raise RuntimeError(f"round {server_round}: no node answered the profile query")
        partitions = [int(p["partition-id"]) for p in profiles.values()]
        if len(set(partitions)) != len(partitions):
            raise RuntimeError(
                f"round {server_round}: duplicate partition ids {sorted(partitions)}"
            )
        return dict(sorted(profiles.items(), key=lambda item: int(item[1]["partition-id"])))

    def aggregate_train(
        self, server_round: int, replies: Iterable[Message]
    ) -> tuple[ArrayRecord | None, MetricRecord | None]:
        """Average the gradients (Eq. 1), take the SGD step (Eq. 2) and advance the clock.

        Raises
        ------
        RuntimeError
            If no device returned a gradient.
        """
        results, excluded = self._train_results(server_round, replies)
        weights = batch_weights([r.batch_size for r in results])
        gradient = weighted_average([r.grads for r in results], weights)
        global_batch = sum(r.batch_size for r in results)
        learning_rate = scaled_learning_rate(self.learning_rate, global_batch, self.base_batch)
        state = sgd_step(
            {k: v.numpy() for k, v in self._plan.arrays.items()}, gradient, learning_rate
        )
        state.update(self._averaged_buffers(results, weights, state))
        train_loss = float(np.average([r.loss for r in results], weights=weights))
        record = self._advance(
            server_round,
            [r.node_id for r in results],
            excluded,
            (global_batch, learning_rate, train_loss),
        )
        self.records.append(record)
        return ArrayRecord({k: Array(v) for k, v in state.items()}), record.to_metric_record()

    def _train_results(
        self, server_round: int, replies: Iterable[Message]
    ) -> tuple[list[_TrainReply], dict[str, str]]:
        """Unpack the train replies that carry content.

        Returns the usable replies and, for every other scheduled device, its partition id
        (as a string) and why it was left out (an error reply, or no reply at all).
        """
        replies = list(replies)
        results: list[_TrainReply] = []
        excluded: dict[str, str] = {}
        failed = [reply for reply in replies if reply.has_error()]
        for reply in failed:
            self._exclude(excluded, reply.metadata.src_node_id, f"error: {reply.error.reason}")
        for reply in replies:
            node_id = reply.metadata.src_node_id
            if reply.has_error():
                continue
            content = reply.content
            buffers = content.array_records.get("buffers", ArrayRecord())
            results.append(
                _TrainReply(
                    node_id=node_id,
                    batch_size=int(content["metrics"][self.weighted_by_key]),
                    loss=float(content["metrics"]["train-loss"]),
                    grads={k: v.numpy() for k, v in content["grads"].items()},
                    buffers={k: v.numpy() for k, v in buffers.items()},
                )
            )
        answered = {r.node_id for r in results} | {r.metadata.src_node_id for r in failed}
        for node_id in self._plan.node_ids:
            if node_id not in answered:
                self._exclude(excluded, node_id, "no reply before the timeout")
        if not results:
            raise RuntimeError(f"round {server_round}: no device returned a gradient")
        return results, excluded

    def _exclude(self, excluded: dict[str, str], node_id: int, reason: str) -> None:
        """Record that the device on ``node_id`` is left out of this round, and warn."""
        partition_id = self._plan.partition_ids[self._plan.node_ids.index(node_id)]
        excluded[str(partition_id)] = reason
        log(WARNING, "round: device %d (node %d) excluded: %s", partition_id, node_id, reason)

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
        """Advance the simulated clock by the round latency (Eq. 15) and record the round.

        ``update`` is the applied update's global batch, learning rate and training loss.

        The latency is that of the devices that took part, with their planned batches and
        slots: a device that failed or never answered does not hold the round up.
        """
        plan = self._plan
        global_batch, learning_rate, train_loss = update
        indices = sorted(plan.node_ids.index(n) for n in participating_nodes)
        allocation = plan.allocation
        if len(indices) < len(plan.node_ids):
            allocation = restrict(plan.instance, allocation, indices)
        split = LatencySplit.from_critical_path(allocation.critical_path)
        self.sim_time_s += float(allocation.round_latency_s)
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
