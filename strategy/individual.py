"""Individual learning: devices train alone until their loss stops improving, then one exchange."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
from flwr.app import ArrayRecord, Message, MetricRecord

from scheduler import Allocation, Instance
from strategy.epochs import epoch_compute_s, exchange_allocation, exchange_slots
from strategy.feel import TrainingComplete
from strategy.instance import build_instance
from strategy.model_feel import ModelFeelStrategy
from task.arrays import array_record
from task.errors import ConfigError


def compute_only(examples: np.ndarray, compute_s: float, policy: str) -> Allocation:
    """Return a round of local training without communication that lasts ``compute_s``.

    The clock may not move (the devices still training are behind the slowest one's total);
    the efficiency sqrt(B) / T of such a round is recorded as 0.
    """
    zeros = np.zeros(len(examples))
    return Allocation(
        batch_sizes=np.asarray(examples, dtype=np.int64),
        uplink_slots_s=zeros,
        downlink_slots_s=zeros,
        uplink_latency_s=compute_s,
        downlink_latency_s=0.0,
        round_latency_s=compute_s,
        global_batch=int(np.sum(examples)),
        efficiency=float(np.sqrt(np.sum(examples)) / compute_s) if compute_s > 0 else 0.0,
        relaxed_efficiency=float("nan"),
        policy=policy,
        critical_path={"compute_s": compute_s, "upload_s": 0.0, "download_s": 0.0, "update_s": 0.0},
    )


class IndividualStrategy(ModelFeelStrategy):
    """Individual learning (Sec. VI-C), the reference of the paper's training speedup.

    Every device trains the initial model alone, one local epoch per round (as in
    :class:`~strategy.model_feel.ModelFeelStrategy`), until its epoch training loss has not
    beaten its best by more than ``min_delta`` for ``patience`` epochs. Then all local
    models are uploaded once, averaged by data size and broadcast.

    The devices run unsynchronised, so the simulated clock is the largest cumulative compute
    time of any device; the final round adds one model exchange (upload and download with
    equal or min-max slots). Total: the slowest device's total compute plus one exchange.
    Until that exchange the global model is the initial one. The exchange also happens when
    ``max_rounds`` is reached or the compute reaches the time budget. The server keeps the
    local models between rounds and sends each back to its device: bookkeeping of the
    simulation, for which no communication is charged.

    Parameters
    ----------
    patience
        Epochs without a new best training loss after which a device stops.
    min_delta
        Decrease of the training loss below the best that counts as a new best.
    max_rounds
        The run's number of rounds; the last one makes the exchange.
    **kwargs
        As for :class:`~strategy.model_feel.ModelFeelStrategy`.
    """

    scheme = "individual"

    def __init__(
        self, *args: Any, patience: int, min_delta: float, max_rounds: int, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.patience = patience
        self.min_delta = min_delta
        self.max_rounds = max_rounds
        self.finished = False
        self._local: dict[int, dict[str, np.ndarray]] = {}
        self._best: dict[int, float] = {}
        self._stale: dict[int, int] = {}
        self._busy_s: dict[int, float] = {}
        self._everyone: dict[int, dict[str, Any]] = {}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Refuse to resume: the devices' local models are not in the checkpoint.

        Raises
        ------
        ConfigError
            Always (field ``resume``).
        """
        raise ConfigError(
            "resume", "individual learning cannot resume: its local models are not checkpointed"
        )

    def converged(self) -> set[int]:
        """Partition ids of the devices that have stopped training."""
        return {pid for pid, stale in self._stale.items() if stale >= self.patience}

    @property
    def complete(self) -> bool:
        """Whether the exchange is made: training is over."""
        return self.finished

    def configure_train(self, server_round: int, *args: Any) -> Iterable[Message]:
        """Send each device that still trains its own model for one more epoch.

        Raises
        ------
        TrainingComplete
            After the exchange.
        """
        if self.complete:
            raise TrainingComplete("individual learning made its exchange")
        return super().configure_train(server_round, *args)

    def _known_to_go_on(self) -> bool:
        """No: whether the devices train on depends on this round's losses."""
        return False

    def _select(self, profiles: dict[int, dict[str, Any]]) -> dict[int, dict[str, Any]]:
        """Keep every profile for the exchange; train the devices that have not stopped."""
        self._everyone = profiles
        stopped = self.converged()
        return {n: p for n, p in profiles.items() if int(p["partition-id"]) not in stopped}

    def _arrays_for(self, partition_id: int, arrays: ArrayRecord) -> ArrayRecord:
        """Return the device's own model, or the initial model before its first epoch."""
        if partition_id not in self._local:
            return arrays
        return array_record(self._local[partition_id])

    def _restrict(self, indices: list[int]) -> Allocation:
        """Return the charged allocation, which only counts the devices that trained."""
        return self._plan.allocation

    def _track(self, partition_id: int, loss: float) -> None:
        """Count the epochs since the device's training loss last beat its best by min_delta."""
        if loss < self._best.get(partition_id, np.inf) - self.min_delta:
            self._best[partition_id], self._stale[partition_id] = loss, 0
        else:
            self._stale[partition_id] += 1

    def _exchange_plan(self, compute_s: float) -> None:
        """Make the plan the exchange of every device's model after ``compute_s`` of compute."""
        nodes = [n for n, p in self._everyone.items() if int(p["partition-id"]) in self._local]
        profiles = [self._everyone[n] for n in nodes]
        instance = Instance.from_dict(build_instance(profiles, self._round_settings(profiles)))
        examples = np.array([p["num-examples"] for p in profiles])
        ready = np.full(len(profiles), compute_s)
        slots = exchange_slots(instance, ready, equal=self.policy.equal_slots)
        self._plan = dataclasses.replace(
            self._plan,
            node_ids=nodes,
            partition_ids=[int(p["partition-id"]) for p in profiles],
            instance=instance,
            allocation=exchange_allocation(instance, ready, examples, slots, policy=self.scheme),
        )

    def aggregate_train(
        self, server_round: int, replies: Iterable[Message]
    ) -> tuple[ArrayRecord | None, MetricRecord | None]:
        """Keep the local models; average them once every device has stopped."""
        results, excluded = self._train_results(server_round, replies)
        plan = self._plan
        epoch_s = epoch_compute_s(plan.instance, plan.allocation.batch_sizes, self.local_batch)
        for r in results:
            index = plan.node_ids.index(r.node_id)
            pid = plan.partition_ids[index]
            self._local[pid] = r.arrays
            self._busy_s[pid] = self._busy_s.get(pid, 0.0) + float(epoch_s[index])
            self._track(pid, r.loss)
        compute = max(self._busy_s.values()) - self.sim_time_s
        self.finished = (
            len(self.converged()) == len(self._everyone)
            or server_round >= self.max_rounds
            or bool(self.time_budget_s and self.sim_time_s + compute >= self.time_budget_s)
        )
        examples = [r.batch_size for r in results]
        train_loss = float(np.average([r.loss for r in results], weights=examples))
        participants = [r.node_id for r in results]
        arrays = None
        if self.finished:
            self._exchange_plan(compute)
            participants = self._plan.node_ids
            models = [
                self._received(server_round, pid, self._local[pid])
                for pid in self._plan.partition_ids
            ]
            arrays = self._average(models, self._plan.allocation.batch_sizes.tolist())
        else:
            allocation = compute_only(plan.allocation.batch_sizes, compute, self.scheme)
            self._plan = dataclasses.replace(plan, allocation=allocation)
        record = self._advance(
            server_round,
            participants,
            excluded,
            (sum(examples), self.local_learning_rate, train_loss),
        )
        self._finish_round(record)
        return arrays, record.to_metric_record()
