"""``comparison.md``'s notes: the learning-rate treatment and the stopping rule of individual."""

from cli.compare.report import _patience_table, _rate_note, _stopping_note
from cli.compare.settings import CompareSettings, RunSpec
from cli.compare.table import RunResult

TARGET = 0.9


def individual(patience, accuracies, rate=None):
    rows = [{"round": n + 1, "sim_time_s": n + 1.0, "sim_energy_j": n + 1.0, "test_accuracy": a,
             "round_latency_s": 1.0} for n, a in enumerate(accuracies)]  # fmt: skip
    config = {"learning-rate": rate or 0.05, "patience": patience}
    spec = RunSpec(6, "iid", 0, "individual", rate, patience=None if patience == 3 else patience)
    return RunResult(spec, rows, {"config": config})


def test_the_patience_table_has_one_row_per_patience_at_the_run_config_s_rate():
    runs = [individual(3, [0.5, 0.95]), individual(1, [0.8]), individual(5, [0.5, 0.5, 0.97]),
            individual(3, [0.99], rate=0.1)]  # fmt: skip
    rows = _patience_table(runs, TARGET)
    assert [r["scheme"] for r in rows] == [f"individual, patience {p}" for p in (1, 3, 5)]
    assert [r["final_accuracy"]["mean"] for r in rows] == [0.8, 0.95, 0.97]
    assert [r["reached"] for r in rows] == [0, 1, 1]


def test_the_notes_state_the_rate_grid_and_the_stopping_rule():
    note = _rate_note(CompareSettings(sweep_learning_rates=(0.1, 0.025)), 0.05)
    assert "{0.025, 0.05, 0.1}" in note and "own best eta0" in note
    rule = _stopping_note({"min-delta": 0.01, "patience": 3})
    assert "min-delta = 0.01" in rule and "patience = 3 epochs" in rule
