"""``feel paper-scale``: pre-train, run the paper-scale grids, write Table II beside the paper's.

One command regenerates ``docs/results/paper-scale``: a model pre-trained on a held-out
slice of Fashion-MNIST (``feel pretrain``), then every grid of :mod:`cli.paper_scale.plan`
through ``feel compare``'s runner, then ``paper-scale.md``. Finished runs and an existing
pre-trained model are kept, so an interrupted command resumes where it stopped.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import shlex
import time
from pathlib import Path
from typing import Any

from cli.errors import UsageError

DEFAULT_DIR = "docs/results/paper-scale"
QUICK_DIR = "results/paper-scale-quick"


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``paper-scale`` subcommand (without importing torch or flwr)."""
    parser = subparsers.add_parser(
        "paper-scale",
        help="pre-train, then Table II, gradient bits, GPU and the regime map on Fashion-MNIST",
        description=__doc__,
    )
    parser.add_argument(
        "--results-dir",
        help=f"where the model, grids and report go (default: {DEFAULT_DIR}, or {QUICK_DIR} "
        "with --quick)",
    )
    parser.add_argument(
        "--data-dir",
        default="",
        help="folder of the Fashion-MNIST idx files (default: Debian's dataset-fashion-mnist)",
    )
    parser.add_argument(
        "--jobs",
        type=int,
        default=os.cpu_count() or 1,
        help="runs at once, each in its own process (default: the cores, here "
        f"{os.cpu_count()}; the results do not change)",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="the same grids, small: one cell, 500 images per device, for CI",
    )
    parser.set_defaults(func=run)


def _check_data(config: dict[str, Any]) -> None:
    """Load the dataset once, so a missing one stops the command before any run."""
    from task.data import load_dataset
    from task.errors import ConfigError

    try:
        load_dataset(config["dataset"], config.get("data-dir") or None)
    except ConfigError as exc:
        raise UsageError("--data-dir", exc.message) from None


def pretrain(plan: Any, config: dict[str, Any], console: Any) -> dict[str, Any]:
    """Pre-train into the run config's ``initial-model`` unless a matching file is there.

    Returns the model file's facts and hash.
    """
    from cli import pretrain as pretrain_command
    from task.config import resolve_run_config
    from task.errors import ConfigError
    from task.model_file import file_sha256, load_model

    path = Path(config["initial-model"])
    resolved = resolve_run_config(config)
    try:
        _, facts = load_model(path, resolved)
        console.print(f"pre-trained model {path} is there: kept")
    except ConfigError:
        steps = plan.pretraining
        args = argparse.Namespace(
            out=path,
            dataset=resolved["dataset"],
            data_dir=resolved["data-dir"],
            model=resolved["model"],
            holdout_examples=steps.holdout_examples,
            target_accuracy=steps.target_accuracy,
            epochs=steps.epochs,
            batch_size=pretrain_command.BATCH,
            learning_rate=pretrain_command.LEARNING_RATE,
            seed=0,
            device="cpu",
        )
        pretrain_command.run(args)
        _, facts = load_model(path, resolved)
    return {"path": path.name, "sha256": file_sha256(path), **vars(facts)}


def run(args: argparse.Namespace) -> int:
    """Pre-train, run or resume every grid, write the report; return 0."""
    from rich.console import Console

    from cli.compare.report import run_comparison
    from cli.paper_scale.plan import FULL, QUICK, grids, run_config
    from cli.paper_scale.report import MARKDOWN_FILE, write_report

    if args.jobs < 1:
        raise UsageError("--jobs", f"must be >= 1, got {args.jobs}")
    plan = QUICK if args.quick else FULL
    root = Path(args.results_dir or (QUICK_DIR if args.quick else DEFAULT_DIR))
    root = root.expanduser().resolve()
    console = Console(soft_wrap=True)
    config = run_config(plan, root, args.data_dir)
    _check_data(config)
    root.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    pretrained = pretrain(plan, config, console)
    planned = grids(plan, config)
    total = sum(len(g.settings.runs()) for g in planned)
    console.print(f"feel paper-scale: {len(planned)} grids, {total} runs; results in {root}")
    words = ["feel", "paper-scale"] + (["--quick"] if args.quick else [])
    command = shlex.join(words)
    ran = 0
    for grid in planned:
        console.print(f"[bold]{grid.name}[/bold]: {grid.purpose}")
        note = f"{command}  # grid {grid.name}"
        settings = dataclasses.replace(grid.settings, jobs=args.jobs)
        ran += run_comparison(settings, root / grid.name, note, console)["runs_ran"]
    wall = time.monotonic() - started
    write_report(plan, planned, root, command, wall, pretrained, ran)
    console.print(f"done in {wall:.0f} s: {root / MARKDOWN_FILE}")
    return 0
