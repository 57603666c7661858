"""``--config FILE.toml``: an experiment in a file, under the command line's options.

The file's top level holds run-config keys (kebab-case, as in pyproject's
``[tool.flwr.app.config]``); a file with nothing else is also a run config that
``flwr run . --run-config FILE.toml`` takes. Two optional tables hold options that are not
run-config keys, named as the options without ``--``: ``[simulate]`` the devices K
(``clients``) and ``name`` of ``feel simulate``, ``[compare]`` the grid of ``feel compare``.
Options that say how or where a command runs (``--jobs``, ``--engine``, ``--ray-address``, ...)
stay on the command line.

Precedence: the defaults, then the file, then the command line. ``feel compare`` takes an
axis that ``[compare]`` leaves out from the run that the top level and ``[simulate]`` describe
(``partition = "shards"`` compares on shards, ``scheme = "proposed"`` compares only proposed);
its other top-level keys go to every run, as ``--set`` items before the command line's.
Each command checks every key of the file, its own table or not. A bad key or value is one
line naming the file and the key (``conf/x.toml: compare.repeats: must be >= 1, got 0``).
"""

from __future__ import annotations

import argparse
import difflib
import functools
import math
import tomllib
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cli.errors import UsageError
from task.config import KEYS, Value
from task.errors import ConfigError

# An option's values: a scalar type, or (type,) for a list of it (a TOML array, or one value).
Kind = type | tuple[type]
# The options each table may set, by name without "--".
TABLES: dict[str, dict[str, Kind]] = {
    "simulate": {"clients": int, "name": str},
    "compare": {
        "schemes": (str,),
        "scenario": str,
        "clients": (int,),
        "partitions": (str,),
        "gradient-bits": (int,),
        "rounds": int,
        "time-budget": float,
        "target-accuracy": float,
        "repeats": int,
        "seed": int,
        "sweep-learning-rates": (float,),
        "individual-patiences": (int,),
        "results-dir": str,
    },
}
# feel compare's option of each run-config key its grid sets (cli.compare.command.GRID_KEYS,
# but the derived min-nodes): a top-level value is that axis's one value.
RUN_AXES = {
    "scheme": "schemes",
    "scenario": "scenario",
    "partition": "partitions",
    "gradient-bits": "gradient-bits",
    "seed": "seed",
    "num-server-rounds": "rounds",
    "time-budget-s": "time-budget",
    "results-dir": "results-dir",
}
# Merges a file into a command's parsed options: returns them and, for each option the file
# set, its key in the file (see ConfigFile.blame).
Merge = Callable[["ConfigFile", argparse.Namespace], tuple[argparse.Namespace, dict[str, str]]]


@dataclass(frozen=True)
class ConfigFile:
    """A checked ``--config`` file.

    Attributes
    ----------
    path
        The file, as the command line names it (for messages).
    run_config
        Its top-level run-config keys, typed.
    tables
        Its ``[simulate]`` and ``[compare]`` options, typed (lists as tuples).
    """

    path: str
    run_config: dict[str, Value]
    tables: dict[str, dict[str, Any]]

    def field(self, key: str) -> str:
        """Return the field of ``key`` in messages, e.g. ``conf/x.toml: compare.repeats``."""
        return f"{self.path}: {key}"

    def table(self, name: str) -> dict[str, Any]:
        """Return the options of table ``name`` (empty if the file has none)."""
        return self.tables.get(name, {})

    @contextmanager
    def blame(self, origins: Mapping[str, str]) -> Iterator[None]:
        """Name this file's key in a usage error of an option that it set.

        ``origins`` maps an option as errors name it (``--rounds``, ``--set patience``) to the
        file's key that set it (``num-server-rounds``, ``compare.rounds``).
        """
        try:
            yield
        except UsageError as exc:
            if exc.field not in origins:
                raise
            raise UsageError(self.field(origins[exc.field]), exc.message) from None


def load(path: str) -> ConfigFile:
    """Read and check the file at ``path``: every key known, every value of its type.

    Ranges, choices and the checks across keys are the command's, on the merged options.

    Raises
    ------
    UsageError
        For a missing or unreadable file, bad TOML (with its line), an unknown table or key,
        a derived run-config key or a value of the wrong type.
    """
    try:
        data = tomllib.loads(Path(path).expanduser().read_text())
    except FileNotFoundError:
        raise UsageError("--config", f"no such file {path!r}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError("--config", f"cannot read {path!r}: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(path, f"not valid TOML: {exc}") from None
    run_config: dict[str, Value] = {}
    tables: dict[str, dict[str, Any]] = {}
    for key, value in data.items():
        if isinstance(value, dict) and key in TABLES:
            tables[key] = {name: _option(path, key, name, v) for name, v in value.items()}
        elif isinstance(value, dict):
            raise UsageError(f"{path}: {key}", f"unknown table; choose from {', '.join(TABLES)}")
        else:
            run_config[key] = _run_value(path, key, value)
    return ConfigFile(path, run_config, tables)


def _run_value(path: str, name: str, value: Any) -> Value:
    """Return the top-level ``value`` of run-config key ``name``, typed."""
    field = f"{path}: {name}"
    if name not in KEYS:
        tables = [table for table, options in TABLES.items() if name in options]
        if tables:
            hint = f"; {name} goes in [{'] or ['.join(tables)}]"
        else:
            close = difflib.get_close_matches(name, KEYS, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
        raise UsageError(field, f"unknown run-config key{hint}")
    key = KEYS[name]
    if key.derived:
        raise UsageError(field, f"not set in a file: {key.help}")
    try:
        return key.typed(value)
    except ConfigError as exc:
        raise UsageError(field, exc.message) from None


def _option(path: str, table: str, name: str, value: Any) -> Any:
    """Return ``value`` of option ``name`` of ``table`` as its kind (a list as a tuple)."""
    field = f"{path}: {table}.{name}"
    if name not in TABLES[table]:
        known = ", ".join(TABLES[table])
        raise UsageError(field, f"unknown option of [{table}]; known: {known}")
    kind = TABLES[table][name]
    if not isinstance(kind, tuple):
        return _scalar(kind, value, field)
    items = value if isinstance(value, list) else [value]
    return tuple(_scalar(kind[0], item, f"{field}[{i}]") for i, item in enumerate(items))


def _scalar(kind: type, value: Any, field: str) -> Any:
    """Return ``value`` as ``kind`` (an int passes as a float, which must be finite)."""
    if kind is float and type(value) is int:
        value = float(value)
    if type(value) is not kind:
        raise UsageError(field, f"expected {kind.__name__}, got {value!r}")
    if kind is float and not math.isfinite(value):
        raise UsageError(field, f"must be a finite number, got {value!r}")
    return value


def _fill(args: argparse.Namespace, option: str, value: Any, key: str, origins: dict) -> None:
    """Set ``option`` to the file's ``value`` of ``key`` unless the command line gave it."""
    dest = option.removeprefix("--").replace("-", "_")
    if getattr(args, dest) is None:
        setattr(args, dest, value)
        origins[option] = key


def simulate_options(
    file: ConfigFile, args: argparse.Namespace
) -> tuple[argparse.Namespace, dict[str, str]]:
    """Merge ``file`` into ``feel simulate``'s options: its run-config keys and ``[simulate]``."""
    merged, origins = argparse.Namespace(**vars(args)), {}
    for name, value in file.run_config.items():
        if getattr(merged, name) is None:  # its option's dest is the key
            setattr(merged, name, value)
            origins[KEYS[name].option] = name
    for name, value in file.table("simulate").items():
        _fill(merged, f"--{name}", value, f"simulate.{name}", origins)
    return merged, origins


def compare_options(
    file: ConfigFile, args: argparse.Namespace
) -> tuple[argparse.Namespace, dict[str, str]]:
    """Merge ``file`` into ``feel compare``'s options.

    ``[compare]`` first; an axis it leaves out takes the top level's value of the key the grid
    sets, or ``[simulate]``'s ``clients``; the other top-level keys become ``--set`` items.
    """
    merged, origins = argparse.Namespace(**vars(args)), {}
    for name, value in file.table("compare").items():
        _fill(merged, f"--{name}", value, f"compare.{name}", origins)
    run = {RUN_AXES[k]: (k, v) for k, v in file.run_config.items() if k in RUN_AXES}
    if "clients" in file.table("simulate"):
        run["clients"] = ("simulate.clients", file.table("simulate")["clients"])
    for option, (key, value) in run.items():
        one = (value,) if isinstance(TABLES["compare"][option], tuple) else value
        _fill(merged, f"--{option}", one, key, origins)
    items = []
    for name, value in file.run_config.items():
        if name not in RUN_AXES:
            text = str(value).lower() if isinstance(value, bool) else str(value)
            items.append(f"{name}={text}")
            origins[f"--set {name}"] = name
    # Of the --set refusals only eval-every's names no key; the file's items come first.
    if "eval-every" in file.run_config:
        origins["--set"] = "eval-every"
    merged.overrides = items + list(args.overrides)
    return merged, origins


def add_config_option(
    parser: argparse.ArgumentParser, run: Callable[[argparse.Namespace], int], merge: Merge
) -> None:
    """Add ``--config FILE.toml`` to ``parser`` and make ``run`` its command, file merged in."""
    parser.add_argument(
        "--config",
        metavar="FILE.toml",
        help="experiment file: run-config keys at the top level, this command's options in "
        "its table; options given here override it (see conf/ and README, Experiments as files)",
    )
    parser.set_defaults(func=functools.partial(_run_with_file, run, merge))


def _run_with_file(
    run: Callable[[argparse.Namespace], int], merge: Merge, args: argparse.Namespace
) -> int:
    """Run ``run`` on ``args`` with ``--config``'s file merged in; its keys named in errors."""
    if not args.config:
        return run(args)
    file = load(args.config)
    merged, origins = merge(file, args)
    with file.blame(origins):
        return run(merged)
