"""Individual learning: devices train alone until their loss stops improving, then one exchange."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
from flwr.app import ArrayRecord

from scheduler import Allocation, Instance
from scheduler.energy import DeviceEnergy, device_energy
from strategy.epochs import epoch_compute_s, exchange_allocation, exchange_slots
from strategy.instance import build_instance
from strategy.model_feel import ModelFeelStrategy, received_model
from strategy.profiles import Profiles
from strategy.rounds import Charge, DeviceUpdate, FeelResult, RoundPlan, RoundUpdate
from task.arrays import array_record
from task.codec import transmitted
from task.errors import ConfigError
from task.protocol import TrainInstruction
from task.quantize import FULL_PRECISION_BITS
from task.seeding import stream_rng

Arrays = dict[str, np.ndarray]


def compute_only(
    examples: np.ndarray, compute_s: float, compute_j: np.ndarray, policy: str
) -> Allocation:
    """Return a round of local training without communication that lasts ``compute_s``.

    The clock may not move (the devices still training are behind the slowest one's total);
    the efficiency sqrt(B) / T of such a round is recorded as 0. Each device spent
    ``compute_j`` on its epoch and nothing on transmission.
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
        energy=DeviceEnergy(np.asarray(compute_j, dtype=float), upload_j=zeros, idle_j=zeros),
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
    simulation, for which no communication is charged and which travels whole. The devices
    that stopped early get no message in the exchange round, so the server encodes each
    upload at ``model_bits`` as a device would (:meth:`_uploaded`).

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
    # Whether the devices train on depends on this round's losses.
    asks_ahead = False

    def __init__(
        self, *args: Any, patience: int, min_delta: float, max_rounds: int, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.patience = patience
        self.min_delta = min_delta
        self.max_rounds = max_rounds
        self.finished = False
        self._local: dict[int, tuple[Arrays, Arrays]] = {}
        self._best: dict[int, float] = {}
        self._stale: dict[int, int] = {}
        self._busy_s: dict[int, float] = {}

    def start(self, *args: Any, from_state: Any = None, **kwargs: Any) -> FeelResult:
        """Run the loop of :class:`~strategy.loop.FeelStrategy`; never from a saved state.

        Raises
        ------
        ConfigError
            For a ``from_state`` (field ``resume``): the local models are not checkpointed.
        """
        if from_state is not None:
            raise ConfigError(
                "resume", "individual learning cannot resume: its local models are not checkpointed"
            )
        return super().start(*args, **kwargs)

    @property
    def reply_bits(self) -> int:
        """Bits per element of the epochs' replies: whole models (the exchange is encoded)."""
        return FULL_PRECISION_BITS

    def _instruction(self, server_round: int, batch: int, cursor: int) -> TrainInstruction:
        """Return the local training settings, without model bits: the model comes back whole."""
        return replace(super()._instruction(server_round, batch, cursor), model_bits=None)

    def _buffers_of(self, plan: RoundPlan, update: DeviceUpdate) -> dict[str, np.ndarray]:
        """Return the buffers of the device's model, which it sends whole."""
        return dict(update.buffers)

    def converged(self) -> set[int]:
        """Partition ids of the devices that have stopped training."""
        return {pid for pid, stale in self._stale.items() if stale >= self.patience}

    @property
    def complete(self) -> bool:
        """Whether the exchange is made: training is over."""
        return self.finished

    def _why_stopped(self, num_rounds: int) -> str:
        """Say that the exchange is made."""
        return "individual learning made its exchange"

    def _select(self, profiles: Profiles) -> Profiles:
        """Train the devices that have not stopped (the plan keeps every profile)."""
        stopped = self.converged()
        return {n: p for n, p in profiles.items() if p.partition_id not in stopped}

    def _arrays_for(self, partition_id: int, arrays: ArrayRecord) -> ArrayRecord:
        """Return the device's own model, or the initial model before its first epoch."""
        if partition_id not in self._local:
            return arrays
        parameters, buffers = self._local[partition_id]
        return array_record({**parameters, **buffers})

    def _uploaded(self, plan: RoundPlan, partition_id: int) -> Arrays:
        """Return what the server gets of a device's model in the exchange.

        Its change from the initial model as a device uploads it (:func:`client.local.sent_model`),
        the parameters' encoded at ``model_bits`` from a stream keyed by the seed, the
        partition and the round, rebuilt as for model-based FEEL (:func:`received_model`).
        """
        reference = plan.model
        parameters, buffers = (
            {name: value - reference[name] for name, value in arrays.items()}
            for arrays in self._local[partition_id]
        )
        rng = stream_rng("strategy.upload", self.seed, partition_id, plan.server_round)
        change = {
            name: transmitted(value, self.model_bits, rng) for name, value in parameters.items()
        }
        return received_model(reference, change, buffers)

    def _track(self, partition_id: int, loss: float) -> None:
        """Count the epochs since the device's training loss last beat its best by min_delta."""
        if loss < self._best.get(partition_id, np.inf) - self.min_delta:
            self._best[partition_id], self._stale[partition_id] = loss, 0
        else:
            self._stale[partition_id] += 1

    def _exchange(self, plan: RoundPlan, compute_s: float, spent_j: dict[int, float]) -> Charge:
        """Charge the exchange of every device's model after ``compute_s`` of compute.

        The devices' energy is their upload's and what ``spent_j`` says they computed.
        """
        reports = [p for p in plan.profiles.values() if p.partition_id in self._local]
        instance = Instance.from_dict(build_instance(reports, self._round_settings(reports)))
        examples = np.array([p.num_examples for p in reports])
        ready = np.full(len(reports), compute_s)
        slots = exchange_slots(instance, ready, equal=self.policy.equal_slots)
        partitions = [p.partition_id for p in reports]
        energy = replace(
            device_energy(instance, ready),
            compute_j=np.array([spent_j.get(pid, 0.0) for pid in partitions]),
        )
        allocation = exchange_allocation(
            instance, ready, examples, slots, policy=self.scheme, energy=energy
        )
        return Charge(partitions, partitions, allocation, allocation)

    def _apply(self, plan: RoundPlan, updates: list[DeviceUpdate]) -> RoundUpdate:
        """Keep the local models; average them once every device has stopped."""
        epoch_s = epoch_compute_s(plan.instance, plan.allocation.batch_sizes, self.local_batch)
        epoch_j = dict(
            zip(plan.partition_ids, device_energy(plan.instance, epoch_s).compute_j, strict=True)
        )
        spent_j = {u.partition_id: float(epoch_j[u.partition_id]) for u in updates}
        for u in updates:
            self._local[u.partition_id] = (u.arrays, u.buffers)
            index = plan.partition_ids.index(u.partition_id)
            self._busy_s[u.partition_id] = self._busy_s.get(u.partition_id, 0.0) + float(
                epoch_s[index]
            )
            self._track(u.partition_id, u.loss)
        compute = max(self._busy_s.values()) - self.state.sim_time_s
        budget = self.time_budget_s
        self.finished = (
            len(self.converged()) == len(plan.profiles)
            or plan.server_round >= self.max_rounds
            or bool(budget and self.state.sim_time_s + compute >= budget)
        )
        examples = [u.weight for u in updates]
        train_loss = float(np.average([u.loss for u in updates], weights=examples))
        arrays = None
        if self.finished:
            charge = self._exchange(plan, compute, spent_j)
            models = [self._uploaded(plan, pid) for pid in charge.partition_ids]
            parameters = self._local[charge.partition_ids[0]][0]
            sizes = charge.scheduled.batch_sizes.tolist()
            arrays = self._average(plan, parameters, models, sizes)
        else:
            spent = [spent_j.get(pid, 0.0) for pid in plan.partition_ids]
            allocation = compute_only(plan.allocation.batch_sizes, compute, spent, self.scheme)
            charge = replace(self._charge(plan, updates), scheduled=allocation, charged=allocation)
        return RoundUpdate(arrays, charge, sum(examples), self.local_learning_rate, train_loss)
