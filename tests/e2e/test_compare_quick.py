"""``feel compare --quick`` end to end: the table agrees with the runs' ``rounds.jsonl``."""

import json
import subprocess
import sys
import time

import pytest
from support.paths import ROOT

from strategy import SCHEME_NAMES
from task.config import DEFAULTS


def rows_of(directory):
    return [json.loads(line) for line in (directory / "rounds.jsonl").read_text().splitlines()]


def first_time(rows, target):
    return next((r["sim_time_s"] for r in rows if r["test_accuracy"] >= target), None)


@pytest.mark.slow
def test_quick_comparison_table_agrees_with_the_rounds_files(tmp_path):
    command = [
        sys.executable,
        "-m",
        "cli.main",
        "compare",
        "--quick",
        "--results-dir",
        str(tmp_path),
    ]
    started = time.monotonic()
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)
    wall_time_s = time.monotonic() - started
    assert done.returncode == 0, done.stdout + done.stderr
    assert wall_time_s < 180, f"--quick took {wall_time_s:.0f} s"
    report = json.loads((tmp_path / "comparison.json").read_text())
    target = report["settings"]["target_accuracy"]
    (cell,) = report["cells"].values()
    table = {row["scheme"]: row for row in cell["table"]}
    assert list(table) == list(SCHEME_NAMES)
    default_rate = report["settings"]["run_config"].get("learning-rate", DEFAULTS["learning-rate"])

    def best_rows(row):  # the run the table reports: the scheme at its best eta0
        rate = None if row["learning_rate"] == default_rate else row["learning_rate"]
        (run,) = [
            run
            for run in report["runs"]
            if run["scheme"] == row["scheme"]
            and run["learning_rate"] == rate
            and run["patience"] is None
            and not run["fixed_batch"]
        ]
        return rows_of(tmp_path / run["directory"])

    rows = {scheme: best_rows(row) for scheme, row in table.items()}
    reference = first_time(rows["individual"], target)
    markdown = (tmp_path / "comparison.md").read_text()
    for scheme, row in table.items():
        runs = rows[scheme]
        assert row["final_accuracy"]["mean"] == runs[-1]["test_accuracy"]
        assert row["rounds"]["mean"] == len(runs)
        reached = first_time(runs, target)
        prefix = f"| {scheme} | {row['learning_rate']:g} | {runs[-1]['test_accuracy']:.1%} |"
        if reached is None:
            assert row["time_to_target_s"] is None and row["speedup"] is None
            assert f"{prefix} not reached |" in markdown
        else:
            assert row["time_to_target_s"]["mean"] == reached
            assert f"{prefix} {reached:.2f} |" in markdown
            if reference is not None:
                assert row["speedup"]["mean"] == pytest.approx(reference / reached)
        assert runs[-1]["sim_time_s"] >= report["settings"]["time_budget_s"] or (
            scheme == "individual"
        )
    figures = ["schemes-K4-iid.png", "lr-sweep-K4-iid.png", "allocation-K4-iid.png",
               "loss-decay.png"]  # fmt: skip
    assert all((tmp_path / name).stat().st_size > 10_000 for name in figures)
    assert "Loss-decay model:" in markdown and "Remarks 2-3" in markdown
