"""``feel compare``: every scheme over a grid of cells, Table II and Figs. 3-5 (Sec. VI)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from rich.console import Console

from compare.report import write_report
from compare.runner import run_grid
from compare.settings import QUICK, CompareSettings, RunSpec

__all__ = ["QUICK", "CompareSettings", "RunSpec", "run_comparison"]


def run_comparison(
    settings: CompareSettings, root: Path, command: str, console: Console | None = None
) -> dict[str, Any]:
    """Run (or resume) the grid of ``settings`` under ``root`` and write its report."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    outcomes = run_grid(settings, root, console or Console())
    return write_report(settings, root, outcomes, time.monotonic() - started, command)
