"""The Flower ServerApp: FEEL training with the run config, results written per round."""

from __future__ import annotations

import copy
import time
from collections.abc import Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from logging import INFO
from pathlib import Path
from typing import Any

import torch
from flwr.app import ArrayRecord, Context, MetricRecord
from flwr.serverapp import Grid, ServerApp
from flwr.supercore import log

from server.build import build_strategy
from server.checkpoint import (
    Checkpoint,
    resume_point,
    rng_state,
    rounds_after,
    save_checkpoint,
    set_rng_state,
)
from server.evaluation import METRICS, Evaluator
from server.plots import plot_curves
from server.results import ResultsWriter, read_rounds, round_row, summarize
from strategy import FeelStrategy, TrainingComplete
from task.arrays import array_record, put_records_once, record_views, send_arrays_out_of_band
from task.config import resolve_run_config
from task.data import load_dataset
from task.flops import parameter_count
from task.models import build_model
from task.training import resolve_device

app = ServerApp()

# Seconds between the simulation grid's checks for replies. Flower's default, 0.1 s, makes
# every phase of a round last a multiple of it: for the digits CNN most of the round
# (scripts/bench_simulation.py).
SIMULATION_PULL_INTERVAL_S = 0.005


class RoundLogger:
    """Flower's ``evaluate_fn``: evaluates the global model, checkpoints, writes the round's row.

    Flower calls it at round 0 (initial model) and after each round's aggregation, so the
    strategy's record of that round is ready. It evaluates every ``eval-every`` rounds and
    after the last (the rounds or the time budget done); other rows hold None test metrics.
    The checkpoint and the row are written in a background thread (:meth:`close` waits for
    the last). A resumed run (``resumed``) goes on with the checkpoint's rows, initial
    metrics and wall time, and skips the round-0 evaluation.
    """

    def __init__(
        self,
        strategy: FeelStrategy,
        evaluator: Evaluator,
        writer: ResultsWriter,
        started: float,
        config: Mapping[str, Any],
        resumed: Checkpoint | None = None,
    ) -> None:
        self.strategy = strategy
        self.evaluator = evaluator
        self.writer = writer
        self.started = started - (resumed.wall_time_s if resumed else 0.0)
        self.last = started
        self.config = dict(config)
        self.rows = list(resumed.rows) if resumed else []
        self.initial: dict[str, float] = dict(resumed.initial) if resumed else {}
        # Writing resnet18's checkpoint takes ~0.1 s: a thread does it while the next
        # round starts, one round at a time.
        self._saver = ThreadPoolExecutor(max_workers=1, thread_name_prefix="checkpoint")
        self._saving: Future[None] | None = None

    def __call__(self, server_round: int, arrays: ArrayRecord) -> MetricRecord | None:
        """Evaluate ``arrays`` (if due); for rounds >= 1 checkpoint, then append the row."""
        if server_round == 0 and self.initial:  # resumed
            return None
        record = self.strategy.records[-1] if server_round else None
        evaluates = record is None or self._evaluates(record.round)
        metrics = self.evaluator(arrays) if evaluates else dict.fromkeys(METRICS)
        self.strategy.clock.mark("evaluate")
        now = time.monotonic()
        if record is None:
            self.initial = metrics
        else:
            self.rows.append(
                round_row(
                    record,
                    metrics,
                    now - self.started,
                    now - self.last,
                    self.strategy.clock.phases(),
                )
            )
            checkpoint = Checkpoint(
                round=record.round,
                config=self.config,
                model=record_views(arrays),
                strategy=self.strategy.state_dict(),
                rows=list(self.rows),
                initial=self.initial,
                wall_time_s=now - self.started,
                rng=rng_state(),
            )
            self._wait()
            self._saving = self._saver.submit(self._save, checkpoint)
            log(
                INFO,
                "round %d: simulated time %.2f s, test accuracy %s",
                record.round,
                record.sim_time_s,
                "not evaluated" if not evaluates else f"{metrics['test_accuracy']:.4f}",
            )
        self.last = now
        return MetricRecord(metrics) if evaluates else None

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

    def _evaluates(self, round_: int) -> bool:
        """Whether round ``round_`` is evaluated: every ``eval-every``-th, and the last."""
        last = round_ == self.config["num-server-rounds"] or self.strategy.complete
        return last or round_ % self.config["eval-every"] == 0


def results_directory(path: str, run_id: int) -> Path:
    """Return the results directory: ``path``, or ``./results/run-<run id>`` if empty."""
    return Path(path or f"results/run-{run_id}").expanduser().resolve()


def run(grid: Grid, run_config: Mapping[str, Any], run_id: int) -> Path:
    """Train for the configured rounds and write the results; return the results directory.

    With run-config ``resume`` the run goes on after the last round checkpointed in the
    results directory (:mod:`server.checkpoint`).
    """
    started = time.monotonic()
    config = resolve_run_config(run_config)
    directory = results_directory(config["results-dir"], run_id)
    resumed = resume_point(directory, config)
    writer = ResultsWriter(directory, resumed.rows if resumed else ())
    torch.manual_seed(config["seed"])
    data = load_dataset(config["dataset"], config["data-dir"] or None)
    model = build_model(config["model"], data.num_classes, data.in_channels, data.image_size)
    num_params = parameter_count(model)
    strategy = build_strategy(config, num_params)
    evaluator = Evaluator(
        copy.deepcopy(model), data.x_test, data.y_test, resolve_device(config["device"])
    )
    rounds = RoundLogger(strategy, evaluator, writer, started, config, resumed)
    initial, completed = ArrayRecord(model.state_dict()), 0
    if resumed:
        strategy.load_state_dict(resumed.strategy)
        set_rng_state(resumed.rng)
        initial = array_record(resumed.model)
        completed = resumed.round
        log(INFO, "resuming after round %d", completed)
    try:
        with rounds_after(strategy, completed):
            strategy.start(
                grid=grid,
                initial_arrays=initial,
                num_rounds=config["num-server-rounds"] - completed,
                timeout=config["round-timeout-s"],
                evaluate_fn=rounds,
            )
    except TrainingComplete as done:
        log(INFO, "training complete: %s", done)
    finally:
        rounds.close()
    rows = read_rounds(writer.directory)
    model_facts = {
        "num_params": num_params,
        "gradient_size_bits": strategy.settings.gradient_size_bits,
    }
    wall_time_s = time.monotonic() - rounds.started
    writer.write_summary(summarize(config, rows, rounds.initial, wall_time_s, model_facts))
    plot_curves(rows, rounds.initial, writer.directory, label=config["scheme"])
    log(INFO, "results in %s", writer.directory)
    return writer.directory


@app.main()
def main(grid: Grid, context: Context) -> None:
    """Run FEEL training with the run config of ``context``."""
    if hasattr(grid, "pull_interval"):  # the Simulation Engine's InMemoryGrid
        grid.pull_interval = SIMULATION_PULL_INTERVAL_S
        send_arrays_out_of_band()
        put_records_once()
    run(grid, context.run_config, context.run_id)
