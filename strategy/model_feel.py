"""Model-based FEEL, i.e. FedAvg [15]: one local epoch per device, models averaged (Sec. VI-C)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from logging import INFO
from typing import Any

import numpy as np
from flwr.app import ArrayRecord, ConfigRecord, Message, MetricRecord
from flwr.supercore import log

from scheduler import Allocation, Instance
from strategy.aggregation import batch_weights, scaled_learning_rate, weighted_average
from strategy.epochs import epoch_compute_s, exchange_allocation, exchange_slots
from strategy.feel import FeelStrategy
from strategy.instance import InstanceSettings
from task.arrays import array_record
from task.quantize import stochastic_quantize
from task.seeding import stream_rng

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


def uploaded_model(
    local: Arrays, reference: Arrays, bits: int, rng: np.random.Generator
) -> dict[str, np.ndarray]:
    """Return what the server receives when a device sends ``local`` with ``bits`` per element.

    The device sends its update ``local - reference`` quantized like a gradient
    (:func:`task.quantize.stochastic_quantize`, unchanged at 32 bits); integer buffers
    (BatchNorm's step counter) travel exactly.
    """
    return {
        name: value
        if not np.issubdtype(value.dtype, np.floating)
        else reference[name] + stochastic_quantize(value - reference[name], bits, rng)
        for name, value in local.items()
    }


class ModelFeelStrategy(FeelStrategy):
    """Model-based FEEL (FedAvg [15], Sec. VI-C) on the FEEL strategy's machinery.

    Each round every device trains the global model for one local epoch of plain SGD with
    mini-batches of ``local_batch`` and learning rate eta0 sqrt(b / B0) (the square-root law
    of Sec. III-A applied to the local steps), and uploads its model; the server averages the
    models weighted by local dataset size n_k / n. The simulated clock advances by the epoch
    compute plus the model upload and download (:mod:`strategy.epochs`) with the same bits per
    element as the gradient schemes and equal or min-max slots.

    Parameters
    ----------
    settings, learning_rate, base_batch
        As for :class:`~strategy.feel.FeelStrategy`.
    local_batch
        Mini-batch size b of the local steps.
    equal_slots
        Share each frame equally instead of with the min-max slots.
    seed
        Seed of the upload quantization.
    **options
        Further options of :class:`~strategy.feel.FeelStrategy` (``gradient_bits``, the bits
        per model element; ``min_nodes``, ``timeout``, ``time_budget_s``).
    """

    message_type = "train.epoch"
    update_key = "arrays"
    scheme = "model-feel"

    def __init__(
        self,
        settings: InstanceSettings,
        learning_rate: float,
        base_batch: int,
        local_batch: int,
        *,
        equal_slots: bool = False,
        seed: int = 0,
        **options: Any,
    ) -> None:
        schedule = EpochSchedule(self.scheme, local_batch, equal_slots)
        super().__init__(schedule, settings, learning_rate, base_batch, **options)
        self.weighted_by_key = "num-examples"
        self.local_batch = local_batch
        self.local_learning_rate = scaled_learning_rate(learning_rate, local_batch, base_batch)
        self.seed = seed

    def summary(self) -> None:
        """Log the FEEL configuration and the local training."""
        super().summary()
        log(
            INFO,
            "\t\t└── Local epoch: batch %d, learning rate %g",
            self.local_batch,
            self.local_learning_rate,
        )

    def _allocate(
        self, instance: Instance, profiles: list[dict[str, Any]], server_round: int
    ) -> Allocation:
        """Return the epoch-and-exchange latencies of the devices' local datasets."""
        return self.policy.allocate(instance, np.array([p["num-examples"] for p in profiles]))

    def _restrict(self, indices: list[int]) -> Allocation:
        """Re-evaluate the round for the devices at ``indices``, keeping their slots."""
        plan = self._plan
        instance = plan.instance.subset(indices)
        examples = plan.allocation.batch_sizes[indices]
        ready = epoch_compute_s(instance, examples, self.local_batch)
        slots = (plan.allocation.uplink_slots_s[indices], plan.allocation.downlink_slots_s[indices])
        return exchange_allocation(instance, ready, examples, slots, policy=self.scheme)

    def _train_config(
        self, config: ConfigRecord, server_round: int, batch_size: int
    ) -> ConfigRecord:
        """Return the local training settings: mini-batch size and learning rate."""
        return ConfigRecord(
            {
                **config,
                "server-round": server_round,
                "local-batch": self.local_batch,
                "learning-rate": self.local_learning_rate,
            }
        )

    def _received(self, server_round: int, partition_id: int, local: Arrays) -> dict:
        """Return what the server gets of a device's model after the quantized upload."""
        rng = stream_rng("strategy.upload", self.seed, partition_id, server_round)
        return uploaded_model(local, self._plan.model, self.gradient_bits, rng)

    def _average(self, models: list[Arrays], examples: list[int]) -> ArrayRecord:
        """Average ``models`` weighted by local dataset size (FedAvg)."""
        averaged = weighted_average(models, batch_weights(examples))
        return array_record(averaged)

    def aggregate_train(
        self, server_round: int, replies: Iterable[Message]
    ) -> tuple[ArrayRecord | None, MetricRecord | None]:
        """Average the uploaded models by data size and advance the clock."""
        results, excluded = self._train_results(server_round, replies)
        plan = self._plan
        models = [
            self._received(
                server_round, plan.partition_ids[plan.node_ids.index(r.node_id)], r.arrays
            )
            for r in results
        ]
        examples = [r.batch_size for r in results]
        train_loss = float(np.average([r.loss for r in results], weights=examples))
        record = self._advance(
            server_round,
            [r.node_id for r in results],
            excluded,
            (sum(examples), self.local_learning_rate, train_loss),
        )
        self._finish_round(record)
        return self._average(models, examples), record.to_metric_record()
