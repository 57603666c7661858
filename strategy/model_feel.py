"""Model-based FEEL, i.e. FedAvg [15]: one local epoch per device, models averaged (Sec. VI-C)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from logging import INFO
from typing import Any

import numpy as np
from flwr.app import ArrayRecord, Message
from flwr.supercore import log

from scheduler import Allocation, Instance
from strategy.aggregation import batch_weights, scaled_learning_rate
from strategy.broadcast import broadcast_model
from strategy.epochs import epoch_compute_s, exchange_allocation, exchange_slots
from strategy.instance import InstanceSettings
from strategy.loop import FeelStrategy
from strategy.rounds import DeviceUpdate, RoundPlan, RoundUpdate
from strategy.validation import aggregate_problem, exclude
from task.arrays import array_record
from task.protocol import TRAIN_EPOCH, ProfileReport, TrainInstruction

Arrays = Mapping[str, np.ndarray]


@dataclass(frozen=True)
class EpochSchedule:
    """The schedule of a model-based round: a local epoch, then the model exchange.

    Attributes
    ----------
    name
        Scheme name, recorded as the round's policy.
    local_batch
        Mini-batch size b of the local steps.
    equal_slots
        Equal slots T_f / K; otherwise the min-max slots of :func:`exchange_slots`.
    """

    name: str
    local_batch: int
    equal_slots: bool

    def allocate(self, instance: Instance, examples: np.ndarray) -> Allocation:
        """Return the latencies of one epoch on ``examples`` per device and the exchange."""
        ready = epoch_compute_s(instance, examples, self.local_batch)
        slots = exchange_slots(instance, ready, equal=self.equal_slots)
        return exchange_allocation(instance, ready, examples, slots, policy=self.name)


def received_model(reference: Arrays, change: Arrays, buffers: Arrays) -> dict[str, np.ndarray]:
    """Return a device's model as the server rebuilds it from its upload, in ``reference``'s order.

    The ``reference`` model sent to the device plus the change it uploaded: of the
    parameters (``change``, decoded when sent encoded) and of the ``buffers``.
    """
    sent = {**change, **buffers}
    return {name: value + sent[name] for name, value in reference.items()}


class ModelFeelStrategy(FeelStrategy):
    """Model-based FEEL (FedAvg [15], Sec. VI-C) as a variant of the FEEL round loop.

    Each round every device trains the global model for one local epoch of plain SGD with
    mini-batches of ``local_batch`` and learning rate eta0 sqrt(b / B0) (the square-root law
    of Sec. III-A applied to the local steps), and uploads its change, below 32 model bits
    encoded (:func:`client.local.sent_model`); the server rebuilds the models
    (:func:`received_model`) and averages them weighted by local dataset size n_k / n. The
    simulated clock advances by the epoch compute plus the model upload and download
    (:mod:`strategy.epochs`) of the encoded model size at ``model_bits`` (the settings'
    upload size) and equal or min-max slots.

    Parameters
    ----------
    settings, learning_rate, base_batch
        As for :class:`~strategy.loop.FeelStrategy`.
    local_batch
        Mini-batch size b of the local steps.
    equal_slots
        Share each frame equally instead of with the min-max slots.
    model_bits
        Bits per element of the model uploads (run-config ``model-bits``).
    **options
        Further options of :class:`~strategy.loop.FeelStrategy` (``min_nodes``, ``timeout``,
        ``time_budget_s``, ``min_devices``, ``seed``, ``lr_scaling``: also the local steps'
        law).
    """

    message_type = TRAIN_EPOCH
    scheme = "model-feel"

    def __init__(
        self,
        settings: InstanceSettings,
        learning_rate: float,
        base_batch: int,
        local_batch: int,
        *,
        equal_slots: bool = False,
        model_bits: int = 32,
        **options: Any,
    ) -> None:
        schedule = EpochSchedule(self.scheme, local_batch, equal_slots)
        super().__init__(schedule, settings, learning_rate, base_batch, **options)
        self.local_batch = local_batch
        self.local_learning_rate = scaled_learning_rate(
            learning_rate, local_batch, base_batch, self.lr_scaling
        )
        self.model_bits = model_bits

    def summary(self) -> None:
        """Log the FEEL configuration and the local training."""
        super().summary()
        log(
            INFO,
            "\t└──> Local epoch: batch %d, learning rate %g",
            self.local_batch,
            self.local_learning_rate,
        )

    @property
    def reply_bits(self) -> int:
        """Bits per element of the model uploads: the model bits."""
        return self.model_bits

    def _allocate(
        self, instance: Instance, reports: list[ProfileReport], server_round: int
    ) -> Allocation:
        """Return the epoch-and-exchange latencies of the devices' local datasets."""
        return self.policy.allocate(instance, np.array([p.num_examples for p in reports]))

    def _restrict(self, plan: RoundPlan, indices: list[int]) -> Allocation:
        """Re-evaluate the round for the devices at ``indices``, keeping their slots."""
        instance = plan.instance.subset(indices)
        examples = plan.allocation.batch_sizes[indices]
        ready = epoch_compute_s(instance, examples, self.local_batch)
        slots = (plan.allocation.uplink_slots_s[indices], plan.allocation.downlink_slots_s[indices])
        return exchange_allocation(instance, ready, examples, slots, policy=self.scheme)

    def _check(
        self, plan: RoundPlan, replies: dict[int, Message], cut_short: bool = False
    ) -> tuple[list[DeviceUpdate], dict[str, str]]:
        """Return the usable updates: those whose model, as the server rebuilds it, is valid.

        A local model's buffers must be finite with no negative BatchNorm variance
        (:func:`~strategy.validation.aggregate_problem`); the average of valid models is
        then valid, however the run's aggregation bounds them. ``cut_short`` as for
        :meth:`~strategy.loop.FeelStrategy._check`.
        """
        updates, excluded = super()._check(plan, replies, cut_short)
        valid = []
        for u in updates:
            if problem := aggregate_problem(self._buffers_of(plan, u)):
                exclude(excluded, str(u.partition_id), u.node_id, f"its model's {problem}")
            else:
                valid.append(u)
        self._require_devices(plan.server_round, len(valid), excluded)
        return valid, excluded

    def _buffers_of(self, plan: RoundPlan, update: DeviceUpdate) -> dict[str, np.ndarray]:
        """Return the buffers of the device's model: those of the model sent plus their change."""
        return {name: plan.model[name] + change for name, change in update.buffers.items()}

    def _instruction(self, server_round: int, batch: int, cursor: int) -> TrainInstruction:
        """Return the local training settings: mini-batch size, learning rate, model bits."""
        return TrainInstruction(
            server_round,
            cursor,
            local_batch=self.local_batch,
            learning_rate=self.local_learning_rate,
            model_bits=self.reply_bits,
        )

    def _average(
        self, plan: RoundPlan, parameters: Iterable[str], models: list[Arrays], examples: list[int]
    ) -> ArrayRecord:
        """Average ``models`` weighted by local dataset size (FedAvg), as the devices receive it.

        The run's aggregation (:class:`~strategy.aggregation.Aggregator`) combines them, its
        bound on an update applied to each model's parameters' change from the one ``plan``
        sent, the buffers bounded as BatchNorm statistics (its ``buffers``). The
        download is at ``model_bits`` (:func:`~strategy.broadcast.broadcast_model`): the
        change of the ``parameters`` from the model ``plan`` sent.
        """
        weights, names = batch_weights(examples), list(parameters)
        kept = [{n: m[n] for n in names} for m in models]
        others = [{n: a for n, a in m.items() if n not in kept[0]} for m in models]
        combined = {
            **self.aggregator.combine(kept, weights, plan.model),
            **self.aggregator.buffers(others, weights),
        }
        average = {name: combined[name] for name in plan.model}
        bits, seed = self.model_bits, self.seed
        return array_record(
            broadcast_model(average, plan.model, names, bits, seed, plan.server_round)
        )

    def _apply(self, plan: RoundPlan, updates: list[DeviceUpdate]) -> RoundUpdate:
        """Average the uploaded models by data size."""
        models = [received_model(plan.model, u.arrays, u.buffers) for u in updates]
        examples = [u.weight for u in updates]
        return RoundUpdate(
            self._average(plan, updates[0].arrays, models, examples),
            self._charge(plan, updates),
            sum(examples),
            self.local_learning_rate,
            float(np.average([u.loss for u in updates], weights=examples)),
        )
