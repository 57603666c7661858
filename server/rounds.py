"""The ServerApp's round hooks: test-set evaluation, checkpoint and results row, progress."""

from __future__ import annotations

import time
from collections.abc import Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from logging import INFO
from typing import Any

from flwr.app import ArrayRecord, MetricRecord
from flwr.supercore import log

from server.checkpoint import Checkpoint, rng_state, save_checkpoint
from server.evaluation import Evaluator
from server.results import ResultsWriter, round_row
from strategy import FinishedRound
from task.arrays import record_views


class TestSetEvaluation:
    """The loop's ``evaluate_fn``: test loss and accuracy; keeps those of the initial model."""

    def __init__(self, evaluator: Evaluator, initial: Mapping[str, float] | None = None) -> None:
        self.evaluator = evaluator
        self.initial: dict[str, float] = dict(initial or {})

    def __call__(self, server_round: int, arrays: ArrayRecord) -> MetricRecord:
        """Evaluate ``arrays``; at round 0 keep the metrics as :attr:`initial`."""
        metrics = self.evaluator(arrays)
        if server_round == 0:
            self.initial = metrics
        return MetricRecord(metrics)


class RoundWriter:
    """Round hook: checkpoints the run, then appends the round's ``rounds.jsonl`` row.

    Writing resnet18's checkpoint takes about 0.1 s, so a thread writes while the next round
    starts, one round at a time; :meth:`close` waits for the last write. A resumed run
    (``resumed``) goes on with the checkpoint's rows and wall time.
    """

    def __init__(
        self,
        writer: ResultsWriter,
        evaluation: TestSetEvaluation,
        config: Mapping[str, Any],
        resumed: Checkpoint | None = None,
    ) -> None:
        self.writer = writer
        self.evaluation = evaluation
        self.config = dict(config)
        self.rows = list(resumed.rows) if resumed else []
        self.started = time.monotonic() - (resumed.wall_time_s if resumed else 0.0)
        self.last = time.monotonic()
        self._saver = ThreadPoolExecutor(max_workers=1, thread_name_prefix="checkpoint")
        self._saving: Future[None] | None = None

    @property
    def wall_time_s(self) -> float:
        """Wall-clock seconds the run has taken, across resumptions."""
        return time.monotonic() - self.started

    def __call__(self, finished: FinishedRound) -> None:
        """Queue the checkpoint and the row of ``finished``."""
        now = time.monotonic()
        metrics = dict(finished.metrics) if finished.metrics is not None else {}
        self.rows.append(
            round_row(
                finished.record,
                {key: metrics.get(key) for key in self.evaluation.evaluator.metrics},
                now - self.started,
                now - self.last,
                finished.phases,
                finished.places,
            )
        )
        self.last = now
        checkpoint = Checkpoint(
            round=finished.record.round,
            config=self.config,
            model=record_views(finished.arrays),
            strategy=finished.state,
            rows=list(self.rows),
            initial=self.evaluation.initial,
            wall_time_s=now - self.started,
            rng=rng_state(),
        )
        self._wait()
        self._saving = self._saver.submit(self._save, checkpoint)

    def _save(self, checkpoint: Checkpoint) -> None:
        """Write the checkpoint, then append its round's row (the order resuming relies on)."""
        save_checkpoint(self.writer.directory, checkpoint)
        self.writer.append_round(checkpoint.rows[-1])

    def _wait(self) -> None:
        """Wait until the last round's checkpoint and row are written; raise if that failed."""
        if self._saving is not None:
            saving, self._saving = self._saving, None
            saving.result()

    def close(self) -> None:
        """Wait for the last write (raise if it failed) and stop the writing thread."""
        try:
            self._wait()
        finally:
            self._saver.shutdown()


def log_progress(finished: FinishedRound) -> None:
    """Round hook: log the round's simulated time and test accuracy."""
    metrics = finished.metrics
    log(
        INFO,
        "round %d: simulated time %.2f s, test accuracy %s",
        finished.record.round,
        finished.record.sim_time_s,
        "not evaluated" if metrics is None else f"{metrics['test_accuracy']:.4f}",
    )
