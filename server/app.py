"""The Flower ServerApp: FEEL training with the run config, results written per round."""

from __future__ import annotations

import copy
import functools
from collections.abc import Mapping
from dataclasses import asdict
from logging import INFO
from pathlib import Path
from typing import Any

import torch
from flwr.app import ArrayRecord, Context
from flwr.server.superlink.linkstate import InMemoryLinkState
from flwr.serverapp import Grid, ServerApp
from flwr.supercore import log
from flwr.superlink.grid.inmemory_grid import InMemoryGrid

from server.build import build_strategy
from server.checkpoint import resume_point, set_rng_state
from server.evaluation import Evaluator
from server.inprocess import InProcessGrid
from server.message_index import index_messages
from server.plots import plot_curves
from server.probe import probe_set
from server.results import ResultsWriter, read_rounds, summarize
from server.rounds import RoundWriter, TestSetEvaluation, log_progress
from server.tensorboard import tensorboard_hook
from strategy import EvaluationSchedule, TrainingState
from strategy.validation import TooFewDevicesError
from task.arrays import array_record
from task.config import resolve_run_config
from task.data import load_dataset
from task.flops import parameter_count, parameter_shapes
from task.model_file import file_sha256, load_model
from task.models import build_model
from task.partition import partition_sizes
from task.system_model import charged_name, system_network
from task.training import resolve_device
from task.transport import enable_ray_transport

app = ServerApp()

# Seconds between the simulation grid's checks for replies. Flower's default, 0.1 s, makes
# every phase of a round last a multiple of it: for the digits CNN most of the round
# (scripts/bench_simulation.py).
SIMULATION_PULL_INTERVAL_S = 0.005


def simulated(grid: Grid) -> bool:
    """Whether ``grid`` is a simulation's (the Simulation Engine's, or in process)."""
    return isinstance(grid, InMemoryGrid | InProcessGrid)


def results_directory(path: str, run_id: int) -> Path:
    """Return the results directory: ``path``, or ``./results/run-<run id>`` if empty."""
    return Path(path or f"results/run-{run_id}").expanduser().resolve()


def run(grid: Grid, run_config: Mapping[str, Any], run_id: int) -> Path:
    """Train for the configured rounds and write the results; return the results directory.

    With run-config ``resume`` the run goes on after the last round checkpointed in the
    results directory (:mod:`server.checkpoint`).
    """
    config = resolve_run_config(run_config)
    directory = results_directory(config["results-dir"], run_id)
    resumed = resume_point(directory, config)
    writer = ResultsWriter(directory, resumed.rows if resumed else ())
    torch.manual_seed(config["seed"])
    data = load_dataset(config["dataset"], config["data-dir"] or None)
    model = build_model(config["model"], data.num_classes, data.in_channels, data.image_size)
    started = initial_model(model, config)
    num_params = parameter_count(model)
    charged = system_network(config["system-model"])[0] if config["system-model"] else model
    sizes = functools.lru_cache(maxsize=4)(functools.partial(partition_sizes, data.y_train, config))
    strategy = build_strategy(
        config, parameter_shapes(charged), simulated=simulated(grid), sizes=sizes
    )
    if charged is not model:
        log(INFO, "latencies charged for %s; %s trains", config["system-model"], config["model"])
    probe = None
    if config["probe-examples"]:
        probe = probe_set(data.x_train, data.y_train, config["probe-examples"], config["seed"])
    evaluator = Evaluator(
        copy.deepcopy(model), data.x_test, data.y_test, resolve_device(config["device"]), probe
    )
    evaluation = TestSetEvaluation(evaluator, resumed.initial if resumed else None)
    board = tensorboard_hook(config["tensorboard"], evaluation, resumed)
    rounds = RoundWriter(writer, evaluation, config, resumed)
    initial, state = ArrayRecord(model.state_dict()), None
    if resumed:
        set_rng_state(resumed.rng)
        initial, state = array_record(resumed.model), TrainingState.from_dict(resumed.strategy)
        log(INFO, "resuming after round %d", resumed.round)
    model_facts = {
        "num_params": num_params,
        "gradient_size_bits": strategy.settings.gradient_size_bits,
        "charged_model": charged_name(config),
        "charged_num_params": parameter_count(charged),
        "initial_model": started,
    }
    stopped = ""
    try:
        result = strategy.start(
            grid=grid,
            initial_arrays=initial,
            num_rounds=config["num-server-rounds"],
            evaluate_fn=evaluation,
            eval_every=EvaluationSchedule(config["eval-every"], config["eval-every-s"]),
            round_hooks=(rounds, log_progress) if board is None else (rounds, board, log_progress),
            from_state=state,
        )
        stopped = result.stopped
    except TooFewDevicesError as exc:  # the rounds so far, if any, are results too
        stopped = f"stopped early: {exc}" if strategy.state.round else ""
        raise
    finally:
        if board is not None:
            board.close()
        rounds.close()
        if stopped:
            _write_results(writer, config, evaluation, rounds.wall_time_s, model_facts, stopped)
    return writer.directory


def _write_results(
    writer: ResultsWriter,
    config: Mapping[str, Any],
    evaluation: TestSetEvaluation,
    wall_time_s: float,
    model_facts: Mapping[str, Any],
    stopped: str,
) -> None:
    """Write ``summary.json`` and the curves of the rounds in ``writer``'s directory."""
    rows = read_rounds(writer.directory)
    summary = summarize(config, rows, evaluation.initial, wall_time_s, model_facts, stopped)
    writer.write_summary(summary)
    plot_curves(rows, evaluation.initial, writer.directory, label=config["scheme"])
    log(INFO, "results in %s", writer.directory)


def initial_model(model: torch.nn.Module, config: Mapping[str, Any]) -> dict[str, Any] | None:
    """Load run-config ``initial-model`` into ``model``; return its path, hash and facts."""
    path = config["initial-model"]
    if not path:
        return None
    state, facts = load_model(path, config)
    model.load_state_dict(state)
    log(INFO, "starting from %s (test accuracy %.2f%%)", path, 100 * facts.test_accuracy)
    return {"path": path, "sha256": file_sha256(Path(path).expanduser()), **asdict(facts)}


@app.main()
def main(grid: Grid, context: Context) -> None:
    """Run FEEL training with the run config of ``context``.

    In the Simulation Engine, Ray carries the arrays without copies unless run-config
    ``ray-zero-copy`` is false (:mod:`task.transport`), and the engine's pick-ups and the
    server's pulls go through indexes of the messages (:mod:`server.message_index`).
    """
    if isinstance(grid, InMemoryGrid) and isinstance(grid.state, InMemoryLinkState):
        index_messages(grid)
    if hasattr(grid, "pull_interval"):  # the Simulation Engine's InMemoryGrid
        grid.pull_interval = SIMULATION_PULL_INTERVAL_S
        if resolve_run_config(context.run_config)["ray-zero-copy"]:
            enable_ray_transport(server=True)
    run(grid, context.run_config, context.run_id)
