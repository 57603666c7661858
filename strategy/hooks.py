"""Flower's per-round Strategy hooks, for a strategy that runs its own round loop."""

from __future__ import annotations

from collections.abc import Iterable

from flwr.app import ArrayRecord, ConfigRecord, Message, MetricRecord
from flwr.serverapp import Grid
from flwr.serverapp.strategy import Strategy


class OwnRoundLoop(Strategy):
    """A Flower ``Strategy`` whose ``start`` plans and applies each round itself.

    Flower's ``Strategy.start`` builds a round from ``configure_train`` and applies it in
    ``aggregate_train``; a FEEL round is planned from the profiles the devices report in
    that same round, so :class:`~strategy.loop.FeelStrategy` runs the whole round in its
    ``start`` and these two hooks refuse to be called. Evaluation is centralized.
    """

    def configure_train(
        self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid
    ) -> Iterable[Message]:
        """Not used: a FEEL round is planned from the devices' profiles inside :meth:`start`."""
        raise TypeError(f"{type(self).__name__} plans each round itself: run it with start()")

    def aggregate_train(
        self, server_round: int, replies: Iterable[Message]
    ) -> tuple[ArrayRecord | None, MetricRecord | None]:
        """Not used: :meth:`start` checks and applies the replies."""
        raise TypeError(f"{type(self).__name__} applies each round inside start()")

    def configure_evaluate(
        self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid
    ) -> Iterable[Message]:
        """No federated evaluation: the server evaluates on the held-out split."""
        return []

    def aggregate_evaluate(
        self, server_round: int, replies: Iterable[Message]
    ) -> MetricRecord | None:
        """No federated evaluation."""
        return None
