"""``feel paper-scale --quick`` end to end: the report agrees with the runs, and it resumes."""

import json
import subprocess
import sys

import pytest
from support.paths import ROOT

from cli.paper_scale.paper import TABLE_II
from cli.paper_scale.plan import QUICK


def rows_of(directory):
    return [json.loads(line) for line in (directory / "rounds.jsonl").read_text().splitlines()]


def first_time(rows, target):
    evaluated = [r for r in rows if r["test_accuracy"] is not None]
    return next((r["sim_time_s"] for r in evaluated if r["test_accuracy"] >= target), None)


def paper_scale(tmp_path):
    command = [sys.executable, "-m", "cli.main", "paper-scale", "--quick"]
    command += ["--results-dir", str(tmp_path)]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout


@pytest.mark.slow
def test_quick_paper_scale_report_agrees_with_the_runs_and_resumes(tmp_path):
    paper_scale(tmp_path)
    report = json.loads((tmp_path / "paper-scale.json").read_text())
    targets = report["targets"]
    assert targets == list(QUICK.targets) and report["runs"] == 14
    pretrained = report["pretrained"]
    assert pretrained["holdout_examples"] == QUICK.pretraining.holdout_examples
    rows = {row["scheme"]: row for row in report["table_ii"]}
    assert list(rows) == list(QUICK.table_schemes)
    times = {}
    for scheme, row in rows.items():
        name = scheme if scheme != "gradient-feel" else "gradient-feel-lr0.001"
        directory = tmp_path / "table2-K6" / "runs" / "K6-iid" / "seed0" / name
        summary = json.loads((directory / "summary.json").read_text())
        assert summary["initial_test_accuracy"] == pretrained["test_accuracy"]
        assert summary["model"]["initial_model"]["sha256"] == pretrained["sha256"]
        assert summary["model"]["charged_model"] == "densenet121"
        times[scheme] = {f"{t:g}": first_time(rows_of(directory), t) for t in targets}
        assert row["time_to_target_s"] == times[scheme]
        assert row["paper"] == list(TABLE_II[(6, "iid")][scheme])
    for scheme, row in rows.items():
        for t, time in times[scheme].items():
            if time is not None and times["individual"][t] is not None:
                expected = {"value": times["individual"][t] / time, "bound": "="}
                assert row["speedup"][t] == expected
    cells = {(p["cycles_per_flop"], p["gradient_bits"]) for p in report["regime"]}
    assert cells == {(c, b) for c in QUICK.cycles_per_flop for b in QUICK.gradient_bits}
    markdown = (tmp_path / "paper-scale.md").read_text()
    assert "## Table II, beside the paper's" in markdown and "90.65%" in markdown
    for figure in ("regime-map.png", "fig3-lr-sweep.png", "table2-K6/schemes-K6-iid.png"):
        assert (tmp_path / figure).stat().st_size > 0
    again = paper_scale(tmp_path)
    assert "is there: kept" in again
    assert json.loads((tmp_path / "paper-scale.json").read_text())["table_ii"] == report["table_ii"]
