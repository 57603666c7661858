"""The FEEL strategy: the round of Sec. II-A as one explicit loop over Flower's grid."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import replace
from logging import INFO, WARNING
from typing import Any

import numpy as np
from flwr.app import ArrayRecord, ConfigRecord, Message
from flwr.serverapp import Grid
from flwr.supercore import log

from scheduler import Allocation, Instance, Policy, restrict
from strategy.aggregation import (
    Aggregator,
    batch_weights,
    scaled_learning_rate,
    sgd_step,
    updated_statistics,
)
from strategy.broadcast import broadcast_gradient
from strategy.deadlines import GRACE_OVER, TIMED_OUT, Deadlines
from strategy.exchange import Exchange
from strategy.hooks import OwnRoundLoop
from strategy.identity import PartitionPins
from strategy.instance import InstanceSettings, build_instance
from strategy.phases import PhaseClock
from strategy.profiles import ProfileCollector, ProfileQueryOut, Profiles
from strategy.record import RoundRecord
from strategy.replies import usable_updates
from strategy.rounds import (
    Charge,
    DeviceUpdate,
    EvaluateFn,
    EvaluationSchedule,
    FeelResult,
    FinishedRound,
    RoundHook,
    RoundPlan,
    RoundUpdate,
    TrainingState,
)
from strategy.validation import TooFewDevicesError, aggregate_problem
from task.arrays import array_record, record_views
from task.protocol import TRAIN_GRADIENT, ProfileReport, TrainInstruction


class FeelStrategy(OwnRoundLoop):
    """Federated edge learning with gradient averaging (Sec. II-A, steps 1-5).

    :meth:`start` runs the rounds. Each one collects the devices' profiles, lets ``policy``
    pick the batch sizes and TDMA slots, sends each device the global model and its own
    batch size, checks the gradients, averages them weighted by batch size (Eq. 1), takes a
    server-side SGD step with eta = eta0 sqrt(B / B0) (Sec. III-A), pools the BatchNorm
    statistics of the devices' batches with the same weights and advances a simulated clock
    by the round latency of the devices that took part (Eq. 15).

    Parameters
    ----------
    policy
        Scheduler policy.
    settings
        Instance settings besides the devices' reports (gradient size, frames, bounds, channel).
    learning_rate, base_batch
        Base learning rate eta0 and the global batch B0 at which it applies.
    lr_scaling
        Learning-rate law (:func:`~strategy.aggregation.scaled_learning_rate`): ``sqrt``
        (eta = eta0 sqrt(B / B0)) or ``fixed`` (eta = eta0).
    bn_statistics
        BatchNorm statistics rule (:func:`~strategy.aggregation.updated_statistics`).
    aggregator
        How the devices' updates are combined (:class:`~strategy.aggregation.Aggregator`):
        by default each is clipped to a multiple of the round's median norm before Eq. (1);
        their BatchNorm statistics are pooled under the same rule.
    gradient_bits, seed
        Bits per element b of the gradients and of the broadcast; below 32 both travel
        encoded (:mod:`task.codec`, :mod:`strategy.broadcast`, seeded by ``seed``).
    min_nodes
        Nodes to wait for before the first round (at most ``deadlines.connect_s`` seconds).
    deadlines
        How long each phase waits for its replies: a quorum and a grace period, or the
        round timeout (:class:`~strategy.deadlines.Deadlines`); silent devices are dropped.
    pins
        Which node may report which partition, and its size
        (:class:`~strategy.identity.PartitionPins`; by default pinned on first report).
    time_budget_s
        Simulated seconds after which no further round starts (0: no budget).
    min_devices
        Usable devices a round needs; with fewer, :class:`TooFewDevicesError` stops the run
        before the round is applied.

    Variants (the model-based schemes) set :attr:`message_type` and override the plan and
    apply steps: ``_select``, ``_allocate``, ``_arrays_for``, ``_instruction``, ``_apply``
    and ``_restrict``.
    """

    message_type: str = TRAIN_GRADIENT
    # Whether the next round's profiles may be asked for as soon as the train messages are out.
    asks_ahead = True

    def __init__(
        self,
        policy: Policy,
        settings: InstanceSettings,
        learning_rate: float,
        base_batch: int,
        gradient_bits: int = 32,
        min_nodes: int = 1,
        deadlines: Deadlines | None = None,
        time_budget_s: float = 0.0,
        min_devices: int = 1,
        lr_scaling: str = "sqrt",
        bn_statistics: str = "global-batch",
        seed: int = 0,
        aggregator: Aggregator | None = None,
        pins: PartitionPins | None = None,
    ) -> None:
        self.policy = policy
        self.settings = settings
        self.learning_rate = learning_rate
        self.base_batch = base_batch
        self.lr_scaling = lr_scaling
        self.bn_statistics = bn_statistics
        self.aggregator = aggregator or Aggregator()
        self.gradient_bits, self.seed = gradient_bits, seed
        self.deadlines = deadlines or Deadlines()
        self.time_budget_s = time_budget_s
        self.min_devices = min_devices
        self.profiles = ProfileCollector(
            settings, min_nodes, self.deadlines, pins or PartitionPins()
        )
        self.state = TrainingState()
        self.clock = PhaseClock()
        # Why a round's new model was refused (empty: none was); the run stops after it.
        self.refused = ""

    @property
    def reply_bits(self) -> int:
        """Bits per element of the updates the devices send: the gradient bits b."""
        return self.gradient_bits

    @property
    def records(self) -> list[RoundRecord]:
        """One record per finished round."""
        return self.state.records

    def summary(self) -> None:
        """Log the FEEL configuration."""
        log(INFO, "\t├──> FEEL:")
        log(INFO, "\t│\t├── Policy: %s", self.policy.name)
        log(INFO, "\t│\t├── Scenario: %s", self.settings.scenario)
        log(INFO, "\t│\t├── Gradient size: %.0f bits", self.settings.gradient_size_bits)
        law = f"sqrt(B / {self.base_batch})" if self.lr_scaling == "sqrt" else "1 (fixed)"
        log(INFO, "\t│\t└── Learning rate: %g * %s", self.learning_rate, law)

    def start(
        self,
        grid: Grid,
        initial_arrays: ArrayRecord,
        num_rounds: int = 3,
        timeout: float | None = None,
        train_config: ConfigRecord | None = None,
        evaluate_config: ConfigRecord | None = None,
        evaluate_fn: EvaluateFn | None = None,
        *,
        eval_every: int | EvaluationSchedule = 1,
        round_hooks: Sequence[RoundHook] = (),
        from_state: TrainingState | None = None,
    ) -> FeelResult:
        """Run rounds ``from_state.round + 1`` to ``num_rounds``, or until :meth:`complete`.

        ``evaluate_fn(round, arrays)`` evaluates the initial model (not when resuming),
        every ``eval_every``-th round and the last (or the rounds of an
        :class:`~strategy.rounds.EvaluationSchedule`); each finished round then goes to the
        ``round_hooks`` in turn. When another round surely follows (:meth:`_goes_on`), each
        train message asks for the device's next profile in its reply, and the other
        connected devices are sent the next round's profile query at once: the profiles are
        in when the round ends, and a round is one exchange with the devices.
        ``evaluate_config`` is unused: evaluation is centralized. The model travels packed
        (:func:`~task.arrays.array_record`), whatever the layout of ``initial_arrays``.
        """
        self.state = from_state or TrainingState()
        if timeout is not None:
            self.deadlines = self.profiles.deadlines = replace(self.deadlines, round_s=timeout)
        shared = train_config or ConfigRecord()
        self.summary()
        result = FeelResult(arrays=array_record(record_views(initial_arrays)))
        if evaluate_fn is not None and from_state is None:
            result.evaluate(evaluate_fn, 0, result.arrays)
        if not isinstance(eval_every, EvaluationSchedule):
            eval_every = EvaluationSchedule(every_rounds=eval_every)
        asked: ProfileQueryOut | None = None
        for server_round in range(self.state.round + 1, num_rounds + 1):
            if self.complete:
                break
            self.clock.mark("start")
            start_s = self.state.sim_time_s
            profiles, excluded = self._profiles(grid, server_round, asked)
            self.clock.mark("query")
            plan = self._plan(server_round, profiles, excluded, result.arrays)
            latency = plan.allocation.round_latency_s
            ahead = self.asks_ahead and self._goes_on(latency, server_round, num_rounds)
            messages = self._train_messages(plan, shared, server_round + 1 if ahead else None)
            self.clock.mark("schedule")
            sent = Exchange.push(grid, messages)
            asked = self.profiles.ask(grid, server_round + 1, plan.node_ids) if ahead else None
            replies = self._receive(sent)
            if asked is not None:
                self.profiles.carry(asked, replies)
            updates, excluded = self._check(plan, replies, sent.cut_short)
            self.clock.mark("train")
            update = self._refuse_bad(server_round, self._apply(plan, updates))
            record = self._advance(plan, update, excluded)
            places = {str(u.partition_id): u.place for u in updates}
            # The next round's replies come in while this loop waits: with a thousand
            # devices, keeping this round's as well would hold two rounds of gradients.
            del replies, updates
            self.profiles.close_round(server_round)
            self.clock.mark("aggregate")
            if asked is None and self._goes_on(0.0, server_round, num_rounds):
                asked = self.profiles.ask(grid, server_round + 1)
            last = server_round == num_rounds or self.complete
            if update.arrays is not None:
                result.arrays = update.arrays
            result.train_metrics_clientapp[server_round] = record.to_metric_record()
            due = eval_every.due(server_round, start_s, self.state.sim_time_s, last)
            metrics = result.evaluate(evaluate_fn, server_round, result.arrays, due)
            self.clock.mark("evaluate")
            state, phases = self.state_dict(), self.clock.phases()
            finished = FinishedRound(record, result.arrays, metrics, state, phases, places, last)
            for hook in round_hooks:
                hook(finished)
        result.sim_time_s, result.records = self.state.sim_time_s, list(self.records)
        result.stopped = self._why_stopped(num_rounds)
        log(INFO, "training stopped: %s", result.stopped)
        return result

    # -- state ---------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """Return what a resumed run starts from (JSON-ready; the SGD of Eq. 2 has no state)."""
        return self.state.to_dict()

    @property
    def complete(self) -> bool:
        """Whether training is over: the clock reached ``time_budget_s``, or a model was refused."""
        spent = bool(self.time_budget_s) and self.state.sim_time_s >= self.time_budget_s
        return spent or bool(self.refused)

    def _why_stopped(self, num_rounds: int) -> str:
        """Say why the loop ended."""
        if self.refused:
            return f"training diverged: {self.refused}"
        if self.complete:
            return (
                f"simulated time {self.state.sim_time_s:.2f} s reached the budget "
                f"{self.time_budget_s:g} s"
            )
        return f"{num_rounds} rounds done"

    def _goes_on(self, latency_s: float, server_round: int, num_rounds: int) -> bool:
        """Whether a round follows once the clock has moved ``latency_s`` more.

        Leaving devices out of a round can only shorten it, so the planned latency bounds it.
        """
        if server_round >= num_rounds or self.complete:
            return False
        budget = self.time_budget_s
        return not (budget and self.state.sim_time_s + latency_s >= budget)

    # -- step 1: profiles ----------------------------------------------------------------

    def _profiles(
        self, grid: Grid, server_round: int, asked: ProfileQueryOut | None
    ) -> tuple[Profiles, dict[str, str]]:
        """Collect the profiles asked for ahead (or asked for now); need min_devices."""
        if asked is None or asked.server_round != server_round:
            asked = self.profiles.ask(grid, server_round)
        else:
            self.profiles.ask_missing(grid, asked)
        profiles, excluded = self.profiles.collect(asked)
        self._require_devices(server_round, len(profiles), excluded)
        return profiles, excluded

    def _require_devices(self, server_round: int, usable: int, excluded: dict) -> None:
        """Stop the run if fewer than ``min_devices`` devices are usable this round."""
        if usable < self.min_devices:
            raise TooFewDevicesError(
                f"round {server_round}: {usable} usable device(s), fewer than min-devices "
                f"{self.min_devices} (excluded: {dict(excluded)}); the round is not applied "
                "and the run stops"
            )

    # -- step 2: plan --------------------------------------------------------------------

    def _plan(
        self, server_round: int, profiles: Profiles, excluded: dict[str, str], arrays: ArrayRecord
    ) -> RoundPlan:
        """Schedule the devices that train this round (:meth:`_select`) with the policy."""
        chosen = self._select(profiles)
        reports = list(chosen.values())
        instance = Instance.from_dict(build_instance(reports, self._round_settings(reports)))
        allocation = self._allocate(instance, reports, server_round)
        log(INFO, "round %d: batch sizes %s", server_round, allocation.batch_sizes.tolist())
        return RoundPlan(
            server_round,
            list(chosen),
            [p.partition_id for p in reports],
            profiles,
            instance,
            allocation,
            arrays,
            excluded,
        )

    def _round_settings(self, reports: Iterable[ProfileReport]) -> InstanceSettings:
        """Return the settings with B^max capped at the smallest local dataset (B_k <= N_k)."""
        smallest = min(p.num_examples for p in reports)
        return replace(self.settings, max_batch=min(self.settings.max_batch, smallest))

    def _select(self, profiles: Profiles) -> Profiles:
        """Return the devices (node id -> profile) that train this round: all of them."""
        return profiles

    def _allocate(
        self, instance: Instance, reports: list[ProfileReport], server_round: int
    ) -> Allocation:
        """Return the round's batches and slots: the policy's allocation of ``instance``."""
        return self.policy.allocate(instance, round_index=server_round - 1)

    # -- step 3: train messages ----------------------------------------------------------

    def _train_messages(
        self, plan: RoundPlan, shared: ConfigRecord, profile_round: int | None = None
    ) -> list[Message]:
        """Build one train message per device; advance each device's sampling cursor.

        With ``profile_round`` each device is asked for that round's profile in its reply.
        """
        messages = []
        for node_id, pid, batch in zip(
            plan.node_ids, plan.partition_ids, plan.allocation.batch_sizes, strict=True
        ):
            cursor = self.state.cursors.get(pid, 0)
            instruction = replace(
                self._instruction(plan.server_round, int(batch), cursor),
                profile_round=profile_round,
            )
            content = instruction.to_record(self._arrays_for(pid, plan.arrays), shared)
            messages.append(
                Message(
                    content,
                    dst_node_id=node_id,
                    message_type=self.message_type,
                    group_id=str(plan.server_round),
                )
            )
            self.state.cursors[pid] = cursor + int(batch)
        return messages

    def _instruction(self, server_round: int, batch: int, cursor: int) -> TrainInstruction:
        """Return one device's instruction: its batch size and the gradient bits."""
        return TrainInstruction(
            server_round, cursor, batch_size=batch, gradient_bits=self.gradient_bits
        )

    def _arrays_for(self, partition_id: int, arrays: ArrayRecord) -> ArrayRecord:
        """Return the model sent to ``partition_id``: the global one."""
        return arrays

    # -- step 4: replies -----------------------------------------------------------------

    def _receive(self, sent: Exchange) -> dict[int, Message]:
        """Wait for the train replies as the deadlines say; note who replied."""
        quorum = self.deadlines.quorum_of(len(sent.messages))
        replies = sent.receive(self.deadlines.round_s, quorum, self.deadlines.grace_s)
        self.profiles.attendance.asked((m.metadata.dst_node_id for m in sent.messages), replies)
        return replies

    def _check(
        self, plan: RoundPlan, replies: dict[int, Message], cut_short: bool = False
    ) -> tuple[list[DeviceUpdate], dict[str, str]]:
        """Return the usable updates (:func:`~strategy.replies.usable_updates`): min_devices.

        With ``cut_short`` the missing replies were cut off by the grace period.
        """
        missing = GRACE_OVER if cut_short else TIMED_OUT
        updates, excluded = usable_updates(
            plan, replies, self.message_type, self.reply_bits, missing
        )
        self._require_devices(plan.server_round, len(updates), excluded)
        return updates, excluded

    # -- step 5: apply -------------------------------------------------------------------

    def _apply(self, plan: RoundPlan, updates: list[DeviceUpdate]) -> RoundUpdate:
        """Combine the gradients (Eq. 1), take the SGD step (Eq. 2), pool the BN statistics.

        Both the gradients and the statistics under the run's aggregation rule.
        """
        weights = batch_weights([u.weight for u in updates])
        global_batch = sum(u.weight for u in updates)
        learning_rate = scaled_learning_rate(
            self.learning_rate, global_batch, self.base_batch, self.lr_scaling
        )
        gradient = self.aggregator.combine([u.arrays for u in updates], weights)  # Eq. (1)
        sent = broadcast_gradient(gradient, self.gradient_bits, self.seed, plan.server_round)
        state = sgd_step(plan.model, sent, learning_rate)
        if any(u.buffers for u in updates):
            batch = self.aggregator.statistics([u.buffers for u in updates], weights, state)
            state.update(updated_statistics(state, batch, self.bn_statistics))
        return RoundUpdate(
            array_record(state),
            self._charge(plan, updates),
            global_batch,
            learning_rate,
            float(np.average([u.loss for u in updates], weights=weights)),
        )

    def _refuse_bad(self, server_round: int, update: RoundUpdate) -> RoundUpdate:
        """Return ``update`` without its model if that is not finite or valid (the run stops).

        The round then leaves the global model as it was
        (:func:`~strategy.validation.aggregate_problem` says why).
        """
        problem = None if update.arrays is None else aggregate_problem(record_views(update.arrays))
        if problem is None:
            return update
        self.refused = (
            f"round {server_round}'s new model was refused ({problem}); "
            f"the global model is that of round {server_round - 1}"
        )
        log(WARNING, "%s", self.refused)
        return replace(update, arrays=None)

    def _charge(self, plan: RoundPlan, updates: list[DeviceUpdate]) -> Charge:
        """Charge the planned round re-evaluated for the devices whose update was applied.

        A device that failed or never answered does not hold the round up.
        """
        indices = sorted(plan.node_ids.index(u.node_id) for u in updates)
        charged = plan.allocation
        if len(indices) < len(plan.node_ids):
            charged = self._restrict(plan, indices)
        participants = [plan.partition_ids[i] for i in indices]
        return Charge(plan.partition_ids, participants, plan.allocation, charged)

    def _restrict(self, plan: RoundPlan, indices: list[int]) -> Allocation:
        """Return the planned allocation re-evaluated for the devices at ``indices``."""
        return restrict(plan.instance, plan.allocation, indices)

    # -- step 6: clock -------------------------------------------------------------------

    def _advance(self, plan: RoundPlan, update: RoundUpdate, excluded: dict) -> RoundRecord:
        """Advance the simulated clock (Eq. 15) and the energy spent; keep the round's record."""
        self.state.sim_time_s += float(update.charge.charged.round_latency_s)
        record = update.record(
            plan.server_round, excluded, self.state.sim_time_s, self.state.sim_energy_j
        )
        self.state.sim_energy_j = record.sim_energy_j
        self.state.records.append(record)
        return record
