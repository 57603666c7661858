"""``feel simulate``: train in Flower's Simulation Engine (Ray backend) and write the results.

Runs ``flwr run <app> local --stream`` against a private local SuperLink (see
:mod:`cli.process.superlink`), follows ``rounds.jsonl`` to show each round, checks the run's final
status (``flwr run --stream`` exits 0 even when the run failed) and stops the SuperLink.
The simulation runs on a private Ray instance, or with ``--ray-address`` (or ``RAY_ADDRESS``)
on an existing Ray cluster (:mod:`cli.process.ray_cluster`).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import tempfile
import time
import tomllib
from collections.abc import Callable
from contextlib import ExitStack
from datetime import datetime
from pathlib import Path
from typing import Any

import tomli_w
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from cli.config_file import add_config_option, simulate_options
from cli.errors import UsageError
from cli.memory import GB, MemoryEstimate, available_bytes, simulation_actors
from cli.process.app_dir import build_app_dir, project_dir
from cli.process.orphans import mark, stop_orphans, unmark
from cli.process.ray_cluster import ray_address
from cli.process.superlink import PRIVATE_RAY, LocalSuperLink, run_id_from_output
from cli.progress import RoundsTail, round_line
from client.shard import CACHE_ENV
from server.results import ROUNDS_FILE, SUMMARY_FILE
from task.config import KEYS, resolve_run_config
from task.errors import ConfigError

COMPLETED = "finished:completed"
LOG_FILE = "flower.log"
RUN_CONFIG_FILE = "run_config.toml"
POLL_S = 0.5
# The last line of a Python traceback, e.g. "task.errors.ConfigError: data-dir: ...".
_EXCEPTION_LINE = re.compile(r"^[\w.]+(Error|Exception|Exit|Interrupt)\b")

CLIENTS = 6


def add_run_config_options(parser: argparse.ArgumentParser) -> None:
    """Add one option per run-config key (but the derived ones) to ``parser``."""
    for key in KEYS.values():
        if key.derived:
            continue
        shown = "./results/<--name or timestamp>" if key.name == "results-dir" else key.default
        kwargs: dict[str, Any] = {
            "dest": key.name,
            "default": None,
            "help": f"{key.help} (default: {shown if shown != '' else 'none'})",
        }
        if key.kind is bool:
            kwargs["action"] = argparse.BooleanOptionalAction
        else:
            kwargs["type"] = key.kind
            kwargs["metavar"] = "PATH" if key.path else key.kind.__name__.upper()
        parser.add_argument(key.option, **kwargs)
    parser.add_argument("--name", help="name of the results folder under ./results")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``simulate`` subcommand; its options mirror the run config."""
    parser = subparsers.add_parser(
        "simulate",
        help="train in Flower's Simulation Engine and write the results directory",
        description="Train with the FEEL strategy in Flower's Simulation Engine (Ray backend); "
        "options mirror the app's run config.",
    )
    add_run_config_options(parser)
    parser.add_argument(
        "--clients", type=int, metavar="INT", help=f"number of devices K (default: {CLIENTS})"
    )
    parser.add_argument(
        "--cpus-per-client",
        type=int,
        default=1,
        metavar="INT",
        help="CPU cores per simulated client (default: 1)",
    )
    parser.add_argument(
        "--ray-address",
        metavar="HOST:PORT",
        help="run on the Ray cluster whose head is at HOST:PORT (auto: the last `ray start "
        "--head` on this host; local: a private Ray) (default: $RAY_ADDRESS, else local)",
    )
    parser.add_argument(
        "--memory-check",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="refuse a run whose estimated peak memory exceeds the memory available on this "
        "host (private Ray only) (default: on)",
    )
    parser.add_argument(
        "--resume",
        metavar="RUN_DIR",
        help="continue the run in RUN_DIR after its last complete round (it keeps its options)",
    )
    add_config_option(parser, run, simulate_options)


def run_config(args: argparse.Namespace) -> dict[str, Any]:
    """Return the full, checked run config of ``args``.

    Raises
    ------
    UsageError
        Naming the option and the value of the first bad input.
    """
    clients = CLIENTS if args.clients is None else args.clients
    for option, value in (("--clients", clients), ("--cpus-per-client", args.cpus_per_client)):
        if value < 1:
            raise UsageError(option, f"must be >= 1, got {value}")
    return resolve_options(args, clients)


def resume_config(args: argparse.Namespace) -> dict[str, Any]:
    """Return the run config of the run in ``--resume RUN_DIR``, set to resume.

    Raises
    ------
    UsageError
        If RUN_DIR holds no run, or an option would change the run.
    """
    directory = Path(args.resume).expanduser().resolve()
    path = directory / RUN_CONFIG_FILE
    if not path.is_file():
        raise UsageError("--resume", f"no {RUN_CONFIG_FILE} in {str(directory)!r}")
    options = [key for key in KEYS.values() if not key.derived]
    changed = [key.option for key in options if getattr(args, key.name) is not None]
    changed += [option for option in ("--clients", "--name") if getattr(args, option[2:])]
    if changed:
        raise UsageError(changed[0], "cannot be changed when resuming a run (--resume)")
    saved = tomllib.loads(path.read_text())
    return _checked({**saved, "resume": True, "results-dir": str(directory)})


def _usage(exc: ConfigError) -> UsageError:
    """Return the usage error of a bad run-config value, naming its option."""
    if exc.field in KEYS:
        return UsageError(KEYS[exc.field].option, exc.message)
    if exc.field == "num-partitions":
        return UsageError("--clients", exc.message)
    return UsageError("--fleet-file", str(exc))  # a fleet file's devices[i].<field>


def _checked(given: dict[str, Any]) -> dict[str, Any]:
    """Return the full run config of the values ``given``, checked.

    Raises
    ------
    UsageError
        Naming the option and the value of the first bad input.
    """
    from scheduler import PolicyError
    from strategy import check_scheme

    try:
        config = resolve_run_config(given)
        check_scheme(config)
    except ConfigError as exc:
        raise _usage(exc) from None
    except PolicyError as exc:
        raise UsageError("--scheme", str(exc)) from None
    return config


def resolve_options(args: argparse.Namespace, num_nodes: int) -> dict[str, Any]:
    """Return the full, checked run config of the run-config options in ``args``.

    ``num_nodes`` devices take part (``min-nodes``); a missing ``--results-dir`` becomes
    ``results/<--name or a timestamp>``; paths become absolute.

    Raises
    ------
    UsageError
        Naming the option and the value of the first bad input.
    """
    given = {k: getattr(args, k) for k in KEYS if getattr(args, k, None) is not None}
    if "results-dir" not in given:
        name = args.name or datetime.now().strftime("%Y%m%d-%H%M%S")
        given["results-dir"] = str(Path("results") / name)
    for key in KEYS.values():
        if key.path and given.get(key.name):
            given[key.name] = str(Path(given[key.name]).expanduser().resolve())
    if given.get("fleet-file") and not Path(given["fleet-file"]).is_file():
        raise UsageError("--fleet-file", f"no such file {given['fleet-file']!r}")
    given["min-nodes"] = num_nodes
    return _checked(given)


def _prepare_results_dir(config: dict[str, Any]) -> Path:
    """Create the results directory, drop an old run's files, write the run config.

    A resumed run keeps its rounds; processes a killed run left behind are stopped first.
    """
    directory = Path(config["results-dir"])
    directory.mkdir(parents=True, exist_ok=True)
    stop_orphans(directory)
    for name in (SUMMARY_FILE,) if config["resume"] else (ROUNDS_FILE, SUMMARY_FILE):
        (directory / name).unlink(missing_ok=True)
    (directory / RUN_CONFIG_FILE).write_text(tomli_w.dumps(config))
    return directory


def _follow(run: subprocess.Popen, directory: Path, rounds: int, console: Console) -> None:
    """Show a progress bar and one line per round until the ``flwr run`` process ``run`` ends."""
    tail = RoundsTail(directory / ROUNDS_FILE)
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
    with Progress(*columns, TimeElapsedColumn(), console=console, transient=True) as progress:
        bar = progress.add_task("rounds", total=rounds)
        while True:
            finished = run.poll() is not None
            for row in tail.poll():
                progress.console.print(round_line(row, rounds))
                progress.advance(bar)
            if finished:
                return
            time.sleep(POLL_S)


def _error_lines(log: Path, count: int = 15) -> list[str]:
    """Return the exception lines of the run log, or its last ``count`` lines if it has none."""
    lines = log.read_text(errors="replace").splitlines()
    errors = [line for line in lines if _EXCEPTION_LINE.match(line)]
    return errors[-count:] if errors else lines[-count:]


def check_memory(needed: MemoryEstimate, clients: int) -> None:
    """Refuse the run if its estimated peak exceeds the memory available now.

    Raises
    ------
    UsageError
        Naming ``--clients``, the estimate and the memory available.
    """
    available = available_bytes()
    if needed.total > available:
        raise UsageError(
            "--clients",
            f"{clients} devices need {needed.describe()}, more than the "
            f"{available / GB:.1f} GB available; use fewer devices, or --no-memory-check",
        )


def _interrupt(signum: int, frame: object) -> None:
    """Turn SIGTERM into KeyboardInterrupt so that the SuperLink is still stopped."""
    raise KeyboardInterrupt


def run(args: argparse.Namespace) -> int:
    """Run (or resume) the simulation; return 0 when the run completed, 1 when it failed.

    A resume first stops the processes of a killed run in its directory
    (:mod:`cli.process.orphans`), rounds left or not.
    """
    from cli.preflight import preflight

    config = resume_config(args) if args.resume else run_config(args)
    cluster = ray_address(args.ray_address)
    directory = Path(config["results-dir"])
    # A killed run's ServerApp may go on checkpointing rounds: stop it before anything else.
    if config["resume"] and (stopped := stop_orphans(directory)):
        print(f"stopped {stopped} process(es) that the killed run left running")
    clients = config["min-nodes"]
    with ExitStack() as stack:
        environment = _shard_cache(stack) if cluster == PRIVATE_RAY else {}
        shards = Path(environment[CACHE_ENV]) if environment else None
        try:
            needed = preflight(config, clients, simulation_actors(args.cpus_per_client), shards)
        except ConfigError as exc:
            raise _usage(exc) from None
        if args.memory_check and cluster == PRIVATE_RAY:
            check_memory(needed, clients)
        return _simulate(args, config, cluster, environment)


def _shard_cache(stack: ExitStack) -> dict[str, str]:
    """Return the environment that points the actors at a folder of the devices' shards.

    The user's ``$FEEL_CACHE_DIR`` if set, else a temporary folder removed when ``stack``
    closes (:func:`client.shard.write_shards` fills it).
    """
    if os.environ.get(CACHE_ENV):
        return {CACHE_ENV: os.environ[CACHE_ENV]}
    folder = stack.enter_context(tempfile.TemporaryDirectory(prefix="feel-shards-"))
    return {CACHE_ENV: folder}


def _simulate(
    args: argparse.Namespace, config: dict[str, Any], cluster: str, environment: dict[str, str]
) -> int:
    """Run the checked simulation ``config`` on ``cluster``: resume, or start from round 1."""
    from server.checkpoint import completed_rounds

    directory, clients = Path(config["results-dir"]), config["min-nodes"]
    if config["resume"]:
        done, rounds = completed_rounds(directory), config["num-server-rounds"]
        if done >= rounds and (directory / SUMMARY_FILE).is_file():
            print(f"nothing to resume: all {rounds} rounds are done; results in {directory}")
            return 0  # a run killed before its summary goes on to write it
        print(f"resuming after round {done} of {rounds}")
    if cluster != PRIVATE_RAY:
        print(f"on the Ray cluster at {cluster}")
    federation = f"num-supernodes={clients} client-resources-num-cpus={args.cpus_per_client}"
    return run_app(
        "feel simulate",
        config,
        lambda directory: LocalSuperLink(
            directory / "superlink.log", cluster, environment=environment
        ),
        federation,
    )


def run_app(
    command: str,
    config: dict[str, Any],
    open_link: Callable[[Path], LocalSuperLink],
    federation: str = "",
) -> int:
    """Run the app with ``config`` through a SuperLink, show its rounds, check its status.

    Parameters
    ----------
    command
        The name shown in the header line, e.g. ``feel simulate``.
    config
        The full run config (:func:`resolve_options`).
    open_link
        Returns the SuperLink (not started yet) given the results directory; it is entered
        as a context manager, so it is stopped however the run ends.
    federation
        ``--federation-config`` of ``flwr run``; empty for none.

    Returns
    -------
    int
        0 when the run completed, 1 when it failed or the processes did not start (one
        line says why).
    """
    console = Console(soft_wrap=True)
    directory = _prepare_results_dir(config)
    started = time.monotonic()
    console.print(
        f"{command}: scheme {config['scheme']}, {config['min-nodes']} devices, "
        f"{config['num-server-rounds']} rounds, {config['dataset']}/{config['model']}; "
        f"results in {directory}"
    )
    with ExitStack() as stack:
        stack.callback(signal.signal, signal.SIGTERM, signal.signal(signal.SIGTERM, _interrupt))
        app = project_dir() or build_app_dir(
            Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="feel-app-")))
        )
        link = open_link(directory)
        mark(directory, link.home)  # before it starts: see cli.process.orphans
        stack.callback(unmark, directory)
        try:
            stack.enter_context(link)
        except RuntimeError as exc:  # a SuperLink or SuperNode that did not start (stopped)
            console.print(f"[red]{command}: {exc}[/red]", highlight=False)
            return 1
        log = stack.enter_context((directory / LOG_FILE).open("w"))
        flwr_run = link.start_run(app, directory / RUN_CONFIG_FILE, federation, log)
        _follow(flwr_run, directory, config["num-server-rounds"], console)
        run_id = run_id_from_output((directory / LOG_FILE).read_text(errors="replace"))
        status = link.run_status(run_id) if run_id is not None else "not started"
    if status != COMPLETED:
        console.print(f"[red]run {run_id} {status}[/red]; log: {directory / LOG_FILE}")
        for line in _error_lines(directory / LOG_FILE):
            console.print(line, markup=False, highlight=False)
        return 1
    summary = json.loads((directory / SUMMARY_FILE).read_text())
    console.print(
        f"done: test accuracy {summary['final_test_accuracy']:.2%}, "
        f"simulated time {summary['sim_time_s']:.1f} s, "
        f"wall time {time.monotonic() - started:.0f} s\nresults: {directory}"
    )
    return 0
