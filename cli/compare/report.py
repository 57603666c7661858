"""Write ``comparison.json``, ``comparison.md`` and the figures of a finished grid."""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path
from typing import Any

from rich.console import Console

from cli.compare.decay import decay_check, verdict
from cli.compare.devices import device_allocation, remark_correlations
from cli.compare.plots import plot_allocation, plot_decay, plot_schemes, plot_sweep
from cli.compare.runner import RunOutcome, run_grid
from cli.compare.settings import PROPOSED, REFERENCE_SCHEME, CompareSettings, RunSpec
from cli.compare.table import RunResult, best_runs, cell_table, markdown_table, scheme_row

JSON_FILE = "comparison.json"
MARKDOWN_FILE = "comparison.md"

NOTES = """\
Final test accuracy: after the last round. Time to target: simulated time of the first round
whose test accuracy reaches the target; energy to target: the devices' energy spent by then
(computation and upload, scheduler/energy.py). Training speedup (Table II): individual learning's
time to target over the scheme's, per seed, where both reach it. With repeats: mean ± sample
standard deviation over the seeds. Figures show the first seed.
"""


def _rate_note(settings: CompareSettings, default: float) -> str:
    """Say which learning rates every scheme ran at and which one the table shows."""
    rates = ", ".join(f"{r:g}" for r in sorted({default, *settings.sweep_learning_rates}))
    own = "".join(
        f" ({scheme}: eta0 in {{{', '.join(f'{r:g}' for r in values)}}} instead)"
        for scheme, values in settings.scheme_learning_rates.items()
        if scheme in settings.schemes
    )
    return (
        f"Learning rate: every scheme ran at each base learning rate eta0 in {{{rates}}}{own} "
        "on every seed; the tables show each scheme at its own best eta0 (column eta0): the "
        "most seeds reaching the target, then the shortest mean time to it, then the highest "
        "mean final accuracy. Figures 4-5 show those runs, Fig. 3 the proposed scheme at every "
        "eta0."
    )


def _stopping_note(config: dict[str, Any]) -> str:
    """State individual learning's stopping rule with the run config's values."""
    return (
        "Individual learning's stopping rule: each device trains one local epoch per round "
        f"until its epoch training loss has not beaten its best by more than min-delta = "
        f"{config['min-delta']:g} for patience = {config['patience']} epochs (or the rounds or "
        "the time budget run out); then the local models are averaged once. Its sensitivity "
        "to the patience, at the run config's eta0, follows each cell's table."
    )


def _patience_table(runs: list[RunResult], target: float) -> list[dict[str, Any]]:
    """Individual learning at each patience (run config's eta0), one row per patience."""
    groups: dict[int, list[RunResult]] = {}
    for run in runs:
        if run.spec.scheme == REFERENCE_SCHEME and run.spec.learning_rate is None:
            groups.setdefault(run.summary["config"]["patience"], []).append(run)
    return [
        scheme_row(f"{REFERENCE_SCHEME}, patience {p}", groups[p], {}, target)
        for p in sorted(groups)
    ]


def _cell_report(
    cell: str, runs: list[RunResult], settings: CompareSettings, root: Path
) -> dict[str, Any]:
    """Table, Eq. (8) check, Remarks 2-3 and figures of one cell."""
    target = settings.target_accuracy
    main = [r for r in runs if r.spec.patience is None and not r.spec.fixed_batch]
    best = [r for group in best_runs(main, list(settings.schemes), target).values() for r in group]
    first = [r for r in best if r.spec.seed == settings.seed]
    report: dict[str, Any] = {"table": cell_table(main, list(settings.schemes), target)}
    patience = _patience_table(runs, target)
    if len(patience) > 1:
        report["individual_patience"] = patience
    figures = {"schemes": plot_schemes(first, root / f"schemes-{cell}.png", cell, target)}
    sweep = [r for r in main if r.spec.scheme == PROPOSED and r.spec.seed == settings.seed]
    if len(sweep) > 1:
        path = root / f"lr-sweep-{cell}.png"
        figures["lr_sweep"] = plot_sweep(sweep, path, f"{cell}: proposed", target)
    proposed = [r for r in first if r.spec.scheme == PROPOSED]
    if proposed:
        allocation = device_allocation(proposed[0])
        report["remarks"] = remark_correlations(allocation)
        path = root / f"allocation-{cell}.png"
        figures["allocation"] = plot_allocation(allocation, path, f"{cell}: proposed scheme")
    if any(r.spec.fixed_batch for r in runs):
        report["loss_decay"] = decay_check(runs)
    report["figures"] = {name: path.name for name, path in figures.items()}
    return report


def _markdown(report: dict[str, Any], settings: CompareSettings, config: dict[str, Any]) -> str:
    """Render the report as Markdown; ``config`` is a main run's config (eta0, patience)."""
    budget = (
        f"{settings.time_budget_s:g} simulated s (at most {settings.rounds} rounds)"
        if settings.time_budget_s
        else f"{settings.rounds} rounds"
    )
    lines = [
        "# Scheme comparison",
        "",
        f"Command: `{report['command']}`  ",
        f"Wall time: {report['wall_time_s']:.0f} s, engine {report['engine']} "
        f"({report['runs_ran']} runs ran, {report['runs_resumed']} resumed); the runs' own "
        f"wall times (summary.json) add up to {report['runs_wall_time_s']:.0f} s.  ",
        f"Every run: {budget}; seeds {settings.seeds()}; target accuracy "
        f"{settings.target_accuracy:.0%}; run-config overrides {settings.run_config or 'none'}.",
        "",
        NOTES,
        _rate_note(settings, config["learning-rate"]),
        "",
    ]
    if REFERENCE_SCHEME in settings.schemes:
        lines += [_stopping_note(config), ""]
    for cell, cell_report in report["cells"].items():
        lines += [f"## {cell}", "", markdown_table(cell_report["table"], settings.target_accuracy)]
        if "individual_patience" in cell_report:
            rows = cell_report["individual_patience"]
            lines += [
                "Individual learning's stopping rule, sensitivity to the patience:",
                "",
                markdown_table(rows, settings.target_accuracy),
            ]
        if "loss_decay" in cell_report:
            lines += [f"Loss-decay model: {verdict(cell_report['loss_decay'])}", ""]
        if "remarks" in cell_report:
            rho = {k: f"{v:+.2f}" for k, v in cell_report["remarks"].items()}
            lines += [
                "Remarks 2-3 (Spearman rank correlations over the devices of the proposed "
                "scheme's first seed; at equal speed: deviations from the speed tier's mean). "
                f"Remark 2, batches grow with speed and rate: batch vs speed "
                f"{rho['batch_vs_speed']}, vs rate {rho['batch_vs_rate']}, vs rate at equal "
                f"speed {rho['batch_vs_rate_same_speed']}. Remark 3, slots shrink as the rate "
                f"grows: slot vs rate {rho['slot_vs_rate']}, at equal speed "
                f"{rho['slot_vs_rate_same_speed']}; slot vs speed {rho['slot_vs_speed']} "
                "(Remark 3 expects - for given batches, but faster devices also take larger "
                "batches).",
                "",
            ]
        lines += [f"![{name}]({path})" for name, path in cell_report["figures"].items()] + [""]
    if "loss_decay" in report:
        lines += [f"![loss decay]({report['loss_decay']})", ""]
    return "\n".join(lines)


def write_report(
    settings: CompareSettings,
    root: Path,
    outcomes: list[RunOutcome],
    wall_time_s: float,
    command: str,
) -> dict[str, Any]:
    """Read every run of the grid, write the JSON, Markdown and figures; return the report."""
    root = Path(root)
    results = [RunResult.load(spec, root) for spec in settings.runs()]
    cells: dict[str, list[RunResult]] = {}
    for result in results:
        cells.setdefault(result.spec.cell, []).append(result)
    report: dict[str, Any] = {
        "command": command,
        "engine": settings.engine,
        "wall_time_s": wall_time_s,
        "runs_ran": sum(o.status == "ran" for o in outcomes),
        "runs_resumed": sum(o.status == "resumed" for o in outcomes),
        "runs_wall_time_s": sum(r.summary["wall_time_s"] for r in results),
        "settings": dataclasses.asdict(settings),
        "runs": [_run_entry(r, outcomes, root, settings.target_accuracy) for r in results],
        "cells": {cell: _cell_report(cell, runs, settings, root) for cell, runs in cells.items()},
    }
    checks = {c: (runs, report["cells"][c].get("loss_decay")) for c, runs in cells.items()}
    checks = {c: value for c, value in checks.items() if value[1] is not None}
    if checks:
        report["loss_decay"] = plot_decay(checks, root / "loss-decay.png").name
    (root / JSON_FILE).write_text(json.dumps(report, indent=2) + "\n")
    main = next(  # a run at the run config's eta0 and patience, if the grid has one
        (
            r
            for r in results
            if r.spec.learning_rate is None and r.spec.patience is None and not r.spec.fixed_batch
        ),
        results[0],
    )
    (root / MARKDOWN_FILE).write_text(_markdown(report, settings, main.summary["config"]))
    return report


def _run_entry(
    result: RunResult, outcomes: list[RunOutcome], root: Path, target: float
) -> dict[str, Any]:
    """One run's line of ``comparison.json``."""
    spec: RunSpec = result.spec
    outcome = next((o for o in outcomes if o.spec == spec), None)
    return {
        **dataclasses.asdict(spec),
        "directory": str(spec.directory(root).relative_to(root)),
        "rounds": len(result.rows),
        "sim_time_s": result.rows[-1]["sim_time_s"],
        "final_accuracy": result.final_accuracy,
        "time_to_target_s": result.time_to(target),
        "sim_energy_j": result.rows[-1]["sim_energy_j"],
        "energy_to_target_j": result.energy_to(target),
        "status": outcome.status if outcome else "resumed",
        "wall_time_s": outcome.wall_time_s if outcome else 0.0,
    }


def run_comparison(
    settings: CompareSettings, root: Path, command: str, console: Console | None = None
) -> dict[str, Any]:
    """Run (or resume) the grid of ``settings`` under ``root`` and write its report."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    outcomes = run_grid(settings, root, console or Console())
    return write_report(settings, root, outcomes, time.monotonic() - started, command)
