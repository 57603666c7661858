"""``feel report``: write one HTML page comparing runs (figures inline, no network to view)."""

from __future__ import annotations

import argparse
from pathlib import Path

from cli.errors import UsageError


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``report`` subcommand (matplotlib is imported only when it runs)."""
    parser = subparsers.add_parser(
        "report",
        help="write one self-contained HTML page comparing runs",
        description="Write one self-contained HTML page comparing runs: their config "
        "differences, test loss and accuracy against simulated time and energy, each run's "
        "per-round batches and slots, and a summary table. Each RUN_DIR is a results "
        "directory of feel simulate or feel deploy-local, or a feel compare output (its runs "
        "are found below it).",
    )
    parser.add_argument("run_dirs", nargs="+", type=Path, metavar="RUN_DIR")
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("report.html"),
        metavar="PATH",
        help="the HTML file to write, its folder created (default: report.html)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Read the runs, write the page (its folder created) and print its path."""
    from cli.report.page import build
    from cli.report.runs import load_runs

    runs = load_runs(args.run_dirs)
    try:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(build(runs), encoding="utf-8")
    except OSError as exc:
        raise UsageError("--out", f"cannot write {args.out}: {exc.strerror}") from None
    print(f"report of {len(runs)} run{'s' if len(runs) != 1 else ''}: {args.out}")
    return 0
