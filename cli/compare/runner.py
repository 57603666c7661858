"""Run the grid: each run through the ServerApp, in process or in Flower's Simulation Engine.

A run is finished when its ``summary.json`` exists, was written for the same run config and
counts as many rounds as its ``rounds.jsonl``; finished runs are not redone, so an
interrupted grid resumes where it stopped.
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import subprocess
import sys
import time
from collections.abc import Mapping
from concurrent.futures import ProcessPoolExecutor, as_completed
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from cli.compare.settings import CompareSettings, RunSpec
from server.results import SUMMARY_FILE, read_rounds
from task.config import KEYS, resolve_run_config

LOG_FILE = "compare.log"


@dataclass(frozen=True)
class RunOutcome:
    """What happened to one run of the grid: ``ran`` (with its wall time) or ``resumed``."""

    spec: RunSpec
    status: str
    wall_time_s: float


def run_config(spec: RunSpec, settings: CompareSettings, root: Path) -> dict[str, Any]:
    """Return the full run config of ``spec``; raises ``ConfigError`` for a bad value.

    With run-config ``tensorboard`` = DIR, each run logs under DIR at its results' path.
    """
    given = {
        **settings.run_config,
        "scheme": spec.scheme,
        "scenario": settings.scenario,
        "partition": spec.partition,
        "gradient-bits": spec.gradient_bits,
        "seed": spec.seed,
        "min-nodes": spec.clients,
        "num-server-rounds": settings.rounds,
        "time-budget-s": settings.time_budget_s,
        "results-dir": str(spec.directory(root).resolve()),
    }
    if settings.run_config.get("tensorboard"):  # a log folder per run, named as its results
        logs = Path(settings.run_config["tensorboard"])
        given["tensorboard"] = str(logs / spec.directory(root).relative_to(root))
    if spec.learning_rate is not None:
        given["learning-rate"] = spec.learning_rate
    if spec.patience is not None:
        given["patience"] = spec.patience
    if spec.fixed_batch:
        given.update(
            {
                "fixed-batch": spec.fixed_batch,
                "lr-scaling": spec.lr_scaling,
                "probe-examples": settings.probe_examples,
                "num-server-rounds": settings.decay_rounds,
                "time-budget-s": 0.0,
                "eval-every": 1,
            }
        )
    return resolve_run_config(given)


def is_complete(directory: Path, config: Mapping[str, Any]) -> bool:
    """Whether ``directory`` holds a finished run of ``config``."""
    try:
        summary = json.loads((Path(directory) / SUMMARY_FILE).read_text())
    except (OSError, ValueError):
        return False
    rounds = len(read_rounds(directory))
    return summary.get("config") == dict(config) and summary.get("rounds") == rounds > 0


@contextmanager
def _quiet_flower() -> Any:
    """Silence Flower's per-round log lines (the records keep what they say)."""
    logger = logging.getLogger("flwr")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def run_inprocess(config: Mapping[str, Any], clients: int) -> None:
    """Run the ServerApp's :func:`server.app.run` on an in-process grid of the real ClientApp.

    A run that stops early for want of usable devices (e.g. every gradient not finite once
    training diverged) is a finished run: its summary says why it stopped.
    """
    from client.app import app as client_app
    from server.app import run
    from server.inprocess import InProcessGrid
    from strategy.validation import TooFewDevicesError

    with _quiet_flower():
        try:
            run(InProcessGrid(client_app, clients, config), config, run_id=0)
        except TooFewDevicesError as exc:  # its summary says so; the grid goes on
            logging.getLogger(__name__).warning("%s: %s", config["results-dir"], exc)


def simulate_arguments(config: Mapping[str, Any], clients: int) -> list[str]:
    """Return the ``feel simulate`` arguments of ``config``: the keys that differ from defaults."""
    arguments = ["simulate", "--clients", str(clients)]
    for name, value in config.items():
        key = KEYS[name]
        if key.derived or value == key.default:
            continue
        if isinstance(value, bool):
            arguments.append(key.option if value else f"--no-{key.option[2:]}")
        else:
            arguments += [key.option, str(value)]
    return arguments


def run_flower(config: Mapping[str, Any], clients: int) -> None:
    """Run ``feel simulate`` (Flower's Simulation Engine) in a subprocess; log in the run dir.

    Raises
    ------
    RuntimeError
        If the simulation fails, with the end of its output.
    """
    directory = Path(config["results-dir"])
    directory.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "cli.main", *simulate_arguments(config, clients)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    (directory / LOG_FILE).write_text(done.stdout + done.stderr)
    if done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).splitlines()[-10:])
        raise RuntimeError(f"feel simulate failed for {directory}:\n{tail}")


ENGINE_RUNNERS = {"inprocess": run_inprocess, "flower": run_flower}


def timed_run(runner: Any, config: Mapping[str, Any], clients: int) -> float:
    """Run one run of the grid with ``runner``; return its wall time in seconds."""
    started = time.monotonic()
    runner(config, clients)
    return time.monotonic() - started


def run_grid(settings: CompareSettings, root: Path, console: Console) -> list[RunOutcome]:
    """Run every unfinished run of ``settings`` under ``root`` with a progress bar.

    With ``settings.jobs`` > 1 that many runs go at once, each in its own process (spawned,
    so no torch state is shared): the runs are independent, so their results are the ones
    a single job gives.
    """
    runner = ENGINE_RUNNERS[settings.engine]
    columns = (
        TextColumn("{task.description:<32}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    specs = settings.runs()
    outcomes: dict[RunSpec, RunOutcome] = {}
    pending = []
    for spec in specs:
        config = run_config(spec, settings, root)
        if is_complete(spec.directory(root), config):
            outcomes[spec] = RunOutcome(spec, "resumed", 0.0)
        else:
            pending.append((spec, config))
    with Progress(*columns, console=console) as progress:
        bar = progress.add_task("grid", total=len(specs), completed=len(outcomes))
        if settings.jobs == 1:
            for spec, config in pending:
                progress.update(bar, description=f"{spec.cell} seed {spec.seed} {spec.name}")
                outcomes[spec] = RunOutcome(spec, "ran", timed_run(runner, config, spec.clients))
                progress.advance(bar)
        else:
            context = multiprocessing.get_context("spawn")
            with ProcessPoolExecutor(settings.jobs, mp_context=context) as pool:
                progress.update(bar, description=f"{settings.jobs} jobs")
                futures = {
                    pool.submit(timed_run, runner, config, spec.clients): spec
                    for spec, config in pending
                }
                for future in as_completed(futures):
                    spec = futures[future]
                    outcomes[spec] = RunOutcome(spec, "ran", future.result())
                    progress.advance(bar)
        progress.update(bar, description="grid done")
    return [outcomes[spec] for spec in specs]
