"""``feel compare``: run every scheme over a grid and write Table II and Figs. 3-5.

Every scheme runs with the same seeds, fleet, partitions and system model through the
ServerApp's code path (:func:`server.app.run`): in this process on an in-process grid of the
real ClientApp (``--engine inprocess``, the default) or through ``feel simulate`` in
Flower's Simulation Engine (``--engine flower``, ~10 s of start-up per run).
"""

from __future__ import annotations

import argparse
import dataclasses
import shlex
import time
from pathlib import Path
from typing import Any

from cli.config_file import add_config_option, compare_options
from cli.errors import UsageError

# Run-config keys that the grid itself sets for each run.
GRID_KEYS = (
    "scheme",
    "scenario",
    "partition",
    "gradient-bits",
    "seed",
    "num-server-rounds",
    "time-budget-s",
    "results-dir",
    "min-nodes",
)


def _csv(kind: type) -> Any:
    """Return an argparse type for a comma-separated list of ``kind``."""

    def parse(text: str) -> tuple:
        try:
            return tuple(kind(item) for item in text.split(",") if item.strip())
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected comma-separated {kind.__name__} values, got {text!r}"
            ) from None

    parse.__name__ = f"{kind.__name__} list"
    return parse


class _Joined(argparse.Action):
    """Store the values of an ``nargs="+"`` option of comma-separated lists as one tuple."""

    def __call__(self, parser: Any, namespace: Any, values: Any, option: Any = None) -> None:
        setattr(namespace, self.dest, tuple(v for items in values for v in items))


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``compare`` subcommand (without importing torch or flwr)."""
    parser = subparsers.add_parser(
        "compare",
        help="run every scheme over a grid and write Table II, Figs. 3-5 and comparison.md",
        description="Run every scheme with the same seeds over a grid of "
        "(K, partition, gradient bits) cells and write comparison.json, comparison.md "
        "and the figures (Table II, Figs. 3-5).",
    )
    add = parser.add_argument
    add(
        "--schemes",
        type=_csv(str),
        metavar="NAMES",
        help="comma-separated schemes (default: all seven; with --scenario gpu: proposed, "
        "online, full, random)",
    )
    add(
        "--scenario",
        choices=("cpu", "gpu"),
        help="device compute model of every run: cpu (Sec. VI-C, default) or gpu (Sec. VI-D, "
        "Figs. 4-5: proposed against the online, full and random baselines)",
    )
    add(
        "--clients",
        type=_csv(int),
        metavar="INTS",
        help="comma-separated numbers of devices K (default: 6,12)",
    )
    add(
        "--partitions",
        type=_csv(str),
        metavar="NAMES",
        help="comma-separated partitions (default: iid,shards)",
    )
    add(
        "--gradient-bits",
        type=_csv(int),
        nargs="+",
        action=_Joined,
        metavar="BITS",
        help="gradient bits b of the cells, e.g. 32 8 1 or 32,8,1 (default: 32)",
    )
    add(
        "--rounds",
        type=int,
        help="rounds per run; without --time-budget the runs' length (default: 1000, a cap)",
    )
    add(
        "--time-budget",
        type=float,
        metavar="SECONDS",
        help="simulated seconds per run (default: 30; 0 with --rounds: no budget)",
    )
    add("--target-accuracy", type=float, help="test accuracy of the time to target (default: 0.9)")
    add("--repeats", type=int, help="seeds per run: --seed, --seed + 1, ... (default: 2)")
    add("--seed", type=int, help="first seed (default: 0)")
    add(
        "--sweep-learning-rates",
        type=_csv(float),
        metavar="RATES",
        help="extra base learning rates of every scheme; each scheme is reported at its best "
        "of these and the run config's (default: 0.025,0.1)",
    )
    add(
        "--individual-patiences",
        type=_csv(int),
        metavar="INTS",
        help="individual learning's sensitivity runs at these patiences besides the run "
        "config's (default: 1,5)",
    )
    add(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        dest="overrides",
        help="any other run-config key for every run, e.g. --set model=resnet18 (repeatable)",
    )
    add("--engine", help="inprocess (default) or flower (Flower's Simulation Engine)")
    add(
        "--jobs",
        type=int,
        help="runs at once, each in its own process (default: 1; the results do not change)",
    )
    add(
        "--results-dir",
        help="where the runs, tables and figures go "
        "(default: results/compare, or results/compare-quick with --quick)",
    )
    add(
        "--quick",
        action="store_true",
        help="all schemes in one small cell (K = 4, iid, 10 simulated s), for CI",
    )
    add_config_option(parser, run, compare_options)


def _overrides(items: list[str]) -> dict[str, Any]:
    """Parse ``--set KEY=VALUE`` items into typed run-config values.

    Raises
    ------
    UsageError
        For a malformed item, an unknown key, a key the grid sets, or a value of the wrong type.
    """
    from task.config import KEYS
    from task.errors import ConfigError

    overrides: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep:
            raise UsageError("--set", f"expected KEY=VALUE, got {item!r}")
        if key not in KEYS:
            raise UsageError("--set", f"unknown run-config key {key!r}")
        if key in GRID_KEYS:
            raise UsageError("--set", f"{key!r} is set by the grid; use its own option")
        if key == "eval-every":
            raise UsageError(
                "--set", "eval-every skips rounds by count; use eval-every-s (simulated seconds)"
            )
        try:
            overrides[key] = KEYS[key].parse(text)
        except ConfigError as exc:
            raise UsageError(f"--set {key}", exc.message) from None
        if KEYS[key].path and text:
            overrides[key] = str(Path(text).expanduser().resolve())
    return overrides


def settings_from(args: argparse.Namespace) -> Any:
    """Return the :class:`cli.compare.CompareSettings` of ``args`` (``--quick``, then options).

    Raises
    ------
    UsageError
        Naming the option and the value of the first bad input.
    """
    from cli.compare.settings import QUICK, SCENARIO_SCHEMES, CompareSettings

    scenario = args.scenario or "cpu"
    given = {
        "schemes": args.schemes or SCENARIO_SCHEMES[scenario],
        "scenario": scenario,
        "clients": args.clients,
        "partitions": args.partitions,
        "gradient_bits": args.gradient_bits,
        "rounds": args.rounds,
        "target_accuracy": args.target_accuracy,
        "repeats": args.repeats,
        "seed": args.seed,
        "sweep_learning_rates": args.sweep_learning_rates,
        "individual_patiences": args.individual_patiences,
        "engine": args.engine,
        "jobs": args.jobs,
    }
    given = {k: v for k, v in given.items() if v is not None}
    if args.time_budget is not None:
        given["time_budget_s"] = args.time_budget
    elif args.rounds is not None:
        given["time_budget_s"] = 0.0
    given["run_config"] = _overrides(args.overrides)
    settings = dataclasses.replace(QUICK if args.quick else CompareSettings(), **given)
    _check(settings)
    return settings


def _check(settings: Any) -> None:
    """Check the grid's own options and build every run's config and scheme once.

    Raises
    ------
    UsageError
        Naming the option and the value of the first bad input.
    """
    from cli.compare.runner import run_config
    from cli.compare.settings import ENGINES
    from scheduler import PolicyError
    from strategy import check_scheme
    from task.errors import ConfigError
    from task.names import PARTITION_NAMES

    for option, values in (
        ("--schemes", settings.schemes),
        ("--clients", settings.clients),
        ("--partitions", settings.partitions),
        ("--gradient-bits", settings.gradient_bits),
    ):
        if not values:
            raise UsageError(option, "must name at least one value")
    for option, value, low in (
        ("--rounds", settings.rounds, 1),
        ("--repeats", settings.repeats, 1),
        ("--seed", settings.seed, 0),
        ("--jobs", settings.jobs, 1),
    ):
        if value < low:
            raise UsageError(option, f"must be >= {low}, got {value}")
    if settings.engine not in ENGINES:
        raise UsageError(
            "--engine", f"unknown engine {settings.engine!r}; choose from {', '.join(ENGINES)}"
        )
    if settings.time_budget_s < 0:
        raise UsageError("--time-budget", f"must be >= 0, got {settings.time_budget_s:g}")
    if not 0 < settings.target_accuracy <= 1:
        raise UsageError("--target-accuracy", f"must be in (0, 1], got {settings.target_accuracy}")
    for k in settings.clients:
        if k < 1:
            raise UsageError("--clients", f"must be >= 1, got {k}")
    for bits in settings.gradient_bits:
        if not 1 <= bits <= 32:
            raise UsageError("--gradient-bits", f"must be between 1 and 32, got {bits}")
    for partition in settings.partitions:
        if partition not in PARTITION_NAMES:
            raise UsageError(
                "--partitions",
                f"unknown partition {partition!r}; choose from {', '.join(PARTITION_NAMES)}",
            )
    for patience in settings.individual_patiences:
        if patience < 1:
            raise UsageError("--individual-patiences", f"must be >= 1, got {patience}")
    for rate in settings.sweep_learning_rates:
        if rate <= 0:
            raise UsageError("--sweep-learning-rates", f"must be > 0, got {rate:g}")
    for spec in settings.runs():
        try:
            config = run_config(spec, settings, Path("."))
            check_scheme(config)
        except ConfigError as exc:
            raise UsageError(f"--set {exc.field}", exc.message) from None
        except PolicyError as exc:
            raise UsageError("--schemes", str(exc)) from None


def _command(args: argparse.Namespace) -> str:
    """Return the command line of ``args`` with the options that were given."""
    words = ["feel", "compare"]
    for action, value in vars(args).items():
        if action in ("command", "func") or value in (None, False, []):
            continue
        option = "--" + action.replace("_", "-")
        if action == "overrides":
            words += [w for item in value for w in ("--set", item)]
        elif value is True:
            words.append(option)
        elif isinstance(value, tuple):
            words += [option, ",".join(f"{v:g}" if isinstance(v, float) else str(v) for v in value)]
        else:
            words += [option, str(value)]
    return shlex.join(words)


def run(args: argparse.Namespace) -> int:
    """Run or resume the grid and write the report; return 0."""
    from rich.console import Console

    from cli.compare.report import run_comparison

    settings = settings_from(args)
    default_dir = "results/compare-quick" if args.quick else "results/compare"
    root = Path(args.results_dir or default_dir).expanduser().resolve()
    console = Console(soft_wrap=True)
    runs = settings.runs()
    patience = sum(spec.patience is not None for spec in runs)
    console.print(
        f"feel compare: {len(runs)} runs ({len(settings.schemes)} schemes x "
        f"{len(settings.learning_rates())} learning rates x {len(settings.cells())} cells x "
        f"{settings.repeats} seeds, {patience} patience runs, "
        f"{len(settings.decay_runs())} Eq. (8) decay runs), engine {settings.engine}; "
        f"results in {root}"
    )
    started = time.monotonic()
    report = run_comparison(settings, root, _command(args), console)
    console.print(
        f"done in {time.monotonic() - started:.0f} s ({report['runs_ran']} runs ran, "
        f"{report['runs_resumed']} resumed): {root / 'comparison.md'}"
    )
    return 0
