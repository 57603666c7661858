"""The report page: one HTML document with its figures inline, every text escaped.

It loads nothing: its Content-Security-Policy allows only inline styles and ``data:``
images, so the page views the same offline.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from html import escape
from typing import Any

from cli.report import figures
from cli.report.runs import ENERGY, TIME, Run

# Config keys left out of the differences: every run has its own results directory.
UNCOMPARED = ("results-dir",)

STYLE = """\
body { font-family: sans-serif; margin: 1.5em; color: #222; max-width: 1250px; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; }
th:first-child, td:first-child { text-align: left; }
th { background: #f0f0f0; }
.wide { overflow-x: auto; }
figure { margin: 0.5em 0 1.5em; }
figure img { max-width: 100%; }
.note { color: #555; font-style: italic; }
"""
POLICY = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"


def _value(value: Any) -> str:
    """Show a table cell: none as a dash, floats to 4 significant digits, the rest as JSON.

    Strings are shown bare, but the empty one as ``""``.
    """
    if value is None:
        return "—"
    if value == "":
        return '""'
    if isinstance(value, float):
        return f"{value:.4g}"
    return value if isinstance(value, str) else json.dumps(value)


def _percent(value: float | None) -> str:
    return "—" if value is None else f"{value:.1%}"


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Return an HTML table of ``headers`` and ``rows`` of cell texts (escaped here)."""
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "".join(
        "<tr>" + "".join(f"<td>{escape(cell)}</td>" for cell in row) + "</tr>\n" for row in rows
    )
    return f'<div class="wide"><table>\n<tr>{head}</tr>\n{body}</table></div>'


def summary_table(runs: Sequence[Run]) -> str:
    """Return one row per run: scheme, rounds, final and best accuracy, time, energy, stop."""
    headers = ("Run", "Scheme", "Rounds", "Final accuracy", "Best accuracy",
               "Simulated time (s)", "Energy (J)", "Wall time (s)", "Stopped")  # fmt: skip
    rows = [
        (
            run.label,
            _value(run.config.get("scheme")),
            _value(run.summary.get("rounds")),
            _percent(run.summary.get("final_test_accuracy")),
            _percent(run.summary.get("best_test_accuracy")),
            _value(run.summary.get("sim_time_s")),
            _value(run.summary.get(ENERGY) if run.has(ENERGY) else None),
            _value(run.summary.get("wall_time_s")),
            _value(run.summary.get("stopped")),
        )
        for run in runs
    ]
    return table(headers, rows)


def config_differences(runs: Sequence[Run]) -> list[str]:
    """Return the run-config keys whose values differ between the runs, sorted."""
    keys = sorted({key for run in runs for key in run.config} - set(UNCOMPARED))
    return [
        key
        for key in keys
        if len({json.dumps(run.config.get(key), sort_keys=True) for run in runs}) > 1
    ]


def differences_table(runs: Sequence[Run]) -> str:
    """Return the differing config values, one row per run (or a note when there are none)."""
    keys = config_differences(runs)
    if not keys:
        reason = "only one run" if len(runs) == 1 else "every run has the same config"
        return f'<p class="note">No differences: {escape(reason)}.</p>'
    rows = [(run.label, *(_value(run.config.get(key)) for key in keys)) for run in runs]
    return table(("Run", *keys), rows)


def image(uri: str, alt: str) -> str:
    """Return an inline figure of the image at ``uri``."""
    return f'<figure><img src="{escape(uri)}" alt="{escape(alt)}"></figure>'


def energy_section(runs: Sequence[Run]) -> str:
    """Return the curves against energy of the runs that record it, and a note naming the rest."""
    missing = [run.label for run in runs if not run.has(ENERGY)]
    parts = (
        [image(figures.data_uri(figures.curves(runs, ENERGY)), "against energy")]
        if len(missing) < len(runs)
        else []
    )
    if missing:
        parts.append(
            f'<p class="note">No energy recorded ({ENERGY} in rounds.jsonl), left out: '
            f"{escape(', '.join(missing))}.</p>"
        )
    return "\n".join(parts)


def allocation_section(runs: Sequence[Run]) -> str:
    """Return the allocation heat maps of each run that has rounds."""
    return "\n".join(
        image(figures.data_uri(figures.allocation(run)), f"allocation of {run.label}")
        if run.rows
        else f'<p class="note">{escape(run.label)}: no rounds.</p>'
        for run in runs
    )


def build(runs: Sequence[Run]) -> str:
    """Return the report page comparing ``runs``."""
    listing = "".join(
        f"<li><b>{escape(run.label)}</b>: {escape(str(run.directory))}</li>" for run in runs
    )
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{escape(POLICY)}">
<title>feel report: {len(runs)} run{"s" if len(runs) != 1 else ""}</title>
<style>
{STYLE}</style>
</head>
<body>
<h1>feel report</h1>
<ul>{listing}</ul>
<h2 id="summary">Summary</h2>
{summary_table(runs)}
<h2 id="config">Config differences</h2>
<p class="note">Run-config keys (summary.json) whose values differ; \
{escape(", ".join(UNCOMPARED))} left out.</p>
{differences_table(runs)}
<h2 id="time">Test loss and accuracy against simulated time</h2>
{image(figures.data_uri(figures.curves(runs, TIME)), "against simulated time")}
<h2 id="energy">Test loss and accuracy against energy</h2>
{energy_section(runs)}
<h2 id="allocation">Allocation per round: batches and slots per device</h2>
{allocation_section(runs)}
</body>
</html>
"""
