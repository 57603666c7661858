"""The Flower ServerApp: FEEL training with the run config, results written per round."""

from __future__ import annotations

import copy
import time
from collections.abc import Mapping
from logging import INFO
from pathlib import Path
from typing import Any

import torch
from flwr.app import ArrayRecord, Context, MetricRecord
from flwr.serverapp import Grid, ServerApp
from flwr.supercore import log

from server.build import build_strategy
from server.config import resolve_run_config
from server.evaluation import Evaluator
from server.plots import plot_curves
from server.results import ResultsWriter, read_rounds, round_row, summarize
from strategy import FeelStrategy
from task.data import load_dataset
from task.flops import parameter_count
from task.models import build_model
from task.training import resolve_device

app = ServerApp()


class RoundLogger:
    """Flower's ``evaluate_fn``: evaluates the global model and writes the round's row.

    Flower calls it at round 0 (initial model) and after each round's aggregation, so the
    strategy's record of that round is ready.
    """

    def __init__(
        self, strategy: FeelStrategy, evaluator: Evaluator, writer: ResultsWriter, started: float
    ) -> None:
        self.strategy = strategy
        self.evaluator = evaluator
        self.writer = writer
        self.started = started
        self.last = started
        self.initial: dict[str, float] = {}

    def __call__(self, server_round: int, arrays: ArrayRecord) -> MetricRecord:
        """Evaluate ``arrays``; for rounds >= 1 append the row to ``rounds.jsonl``."""
        metrics = self.evaluator(arrays)
        now = time.monotonic()
        if server_round == 0:
            self.initial = metrics
        else:
            record = self.strategy.records[-1]
            self.writer.append_round(
                round_row(record, metrics, now - self.started, now - self.last)
            )
            log(
                INFO,
                "round %d: simulated time %.2f s, test accuracy %.4f",
                server_round,
                record.sim_time_s,
                metrics["test_accuracy"],
            )
        self.last = now
        return MetricRecord(metrics)


def results_directory(path: str, run_id: int) -> Path:
    """Return the results directory: ``path``, or ``./results/run-<run id>`` if empty."""
    return Path(path or f"results/run-{run_id}").expanduser().resolve()


def run(grid: Grid, run_config: Mapping[str, Any], run_id: int) -> Path:
    """Train for the configured rounds and write the results; return the results directory."""
    started = time.monotonic()
    config = resolve_run_config(run_config)
    writer = ResultsWriter(results_directory(config["results-dir"], run_id))
    torch.manual_seed(config["seed"])
    data = load_dataset(config["dataset"], config["data-dir"] or None)
    model = build_model(config["model"], data.num_classes, data.in_channels, data.image_size)
    num_params = parameter_count(model)
    strategy = build_strategy(config, num_params)
    evaluator = Evaluator(
        copy.deepcopy(model), data.x_test, data.y_test, resolve_device(config["device"])
    )
    rounds = RoundLogger(strategy, evaluator, writer, started)
    strategy.start(
        grid=grid,
        initial_arrays=ArrayRecord(model.state_dict()),
        num_rounds=config["num-server-rounds"],
        evaluate_fn=rounds,
    )
    rows = read_rounds(writer.directory)
    model_facts = {
        "num_params": num_params,
        "gradient_size_bits": strategy.settings.gradient_size_bits,
    }
    wall_time_s = time.monotonic() - started
    writer.write_summary(summarize(config, rows, rounds.initial, wall_time_s, model_facts))
    plot_curves(rows, rounds.initial, writer.directory, label=config["scheme"])
    log(INFO, "results in %s", writer.directory)
    return writer.directory


@app.main()
def main(grid: Grid, context: Context) -> None:
    """Run FEEL training with the run config of ``context``."""
    run(grid, context.run_config, context.run_id)
