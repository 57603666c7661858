"""Table II from rounds rows, the Eq. (8) fit and the grid's run plan (compare package)."""

import numpy as np
import pytest

from cli.compare.devices import DeviceAllocation, remark_correlations
from cli.compare.settings import QUICK, CompareSettings, RunSpec
from cli.compare.table import RunResult, best_runs, cell_table, markdown_table

TARGET = 0.9
SCHEMES = ("proposed", "online", "full", "random", "gradient-feel", "model-feel", "individual")


def result(scheme, accuracies, latency=1.0, seed=0, batch=10, losses=None, rate=None):
    """A run whose round n ends at n * latency, with n * 0.5 J spent, and the given accuracies."""
    losses = losses or [1.0 / (n + 2) for n in range(len(accuracies))]
    rows = [
        {"round": n + 1, "sim_time_s": (n + 1) * latency, "sim_energy_j": (n + 1) * 0.5,
         "test_accuracy": a, "test_loss": loss, "global_batch": batch, "round_latency_s": latency}
        for n, (a, loss) in enumerate(zip(accuracies, losses, strict=True))
    ]  # fmt: skip
    config = {"learning-rate": rate or 0.05, "patience": 3}
    summary = {"initial_test_accuracy": 0.1, "initial_test_loss": 1.0, "config": config}
    return RunResult(RunSpec(6, "iid", seed, scheme, rate), rows, summary)


def test_time_to_target_is_the_first_round_at_or_above_it():
    run = result("proposed", [0.5, 0.9, 0.8, 0.95], latency=2.0)
    assert run.time_to(TARGET) == 4.0 and run.time_to(0.99) is None
    assert run.energy_to(TARGET) == 1.0 and run.energy_to(0.99) is None
    assert run.final_accuracy == 0.95
    times, values = run.curve("test_accuracy")
    assert times.tolist() == [0, 2, 4, 6, 8] and values[0] == 0.1


def test_speedup_is_individual_time_over_the_scheme_time_per_seed():
    runs = [
        result("individual", [0.5, 0.92], latency=3.0, seed=0),  # 6 s
        result("individual", [0.91], latency=4.0, seed=1),  # 4 s
        result("proposed", [0.95], latency=2.0, seed=0),  # 2 s: 3x
        result("proposed", [0.5, 0.93], latency=1.0, seed=1),  # 2 s: 2x
        result("online", [0.2, 0.3], seed=0),
        result("online", [0.95], latency=8.0, seed=1),  # 8 s: 0.5x
    ]
    table = {
        row["scheme"]: row for row in cell_table(runs, ["proposed", "online", "individual"], TARGET)
    }
    assert table["proposed"]["speedup"]["mean"] == pytest.approx(2.5)
    assert table["proposed"]["speedup"]["std"] == pytest.approx(np.std([3, 2], ddof=1))
    assert table["individual"]["speedup"]["mean"] == pytest.approx(1.0)
    assert table["online"]["reached"] == 1 and table["online"]["speedup"]["n"] == 1
    assert table["online"]["final_accuracy"]["mean"] == pytest.approx((0.3 + 0.95) / 2)
    assert table["proposed"]["energy_to_target_j"]["mean"] == pytest.approx(0.75)  # 0.5 and 1 J
    text = markdown_table(list(table.values()), TARGET)
    assert "| proposed | 0.05 | 94.0 ± 1.4% | 2.00 ± 0.00 | 0.750 ± 0.354 | 2.50 ± 0.71× |" in text
    assert "8.00 (1/2 reached)" in text


def test_without_individual_reaching_the_target_there_is_no_speedup():
    runs = [result("individual", [0.5]), result("proposed", [0.95])]
    rows = cell_table(runs, ["proposed", "individual"], TARGET)
    assert rows[0]["speedup"] is None and rows[1]["time_to_target_s"] is None
    assert "| individual | 0.05 | 50.0% | not reached | — | — |" in markdown_table(rows, TARGET)


def test_each_scheme_is_reported_at_its_own_best_learning_rate():
    runs = [
        result("individual", [0.95], latency=6.0),  # 6 s at 0.05
        result("individual", [0.95], latency=3.0, rate=0.1),  # 3 s at 0.1: the reference
        result("full", [0.5, 0.8], rate=0.1),  # never reaches: loses to 0.05
        result("full", [0.5, 0.92], latency=2.0),  # 4 s at 0.05
        result("online", [0.5, 0.6]),  # neither reaches: the higher final accuracy wins
        result("online", [0.5, 0.7], rate=0.025),
    ]
    best = best_runs(runs, ["full", "online", "individual"], TARGET)
    assert {s: group[0].spec.learning_rate for s, group in best.items()} == {
        "full": None, "online": 0.025, "individual": 0.1
    }  # fmt: skip
    table = {r["scheme"]: r for r in cell_table(runs, ["full", "online", "individual"], TARGET)}
    assert [table[s]["learning_rate"] for s in ("full", "online", "individual")] == [
        0.05, 0.025, 0.1
    ]  # fmt: skip
    assert table["full"]["speedup"]["mean"] == pytest.approx(3.0 / 4.0)


def test_grid_plans_every_scheme_at_every_learning_rate_the_patience_and_decay_runs():
    settings = CompareSettings(repeats=2, sweep_learning_rates=(0.1,))
    runs = settings.runs()
    decay = len(settings.decay_batches) * 2  # both learning-rate laws, first seed only
    # cells x (seeds x (schemes x rates + patiences) + decay runs)
    assert len(runs) == 2 * 2 * (2 * (7 * 2 + 2) + decay)
    assert {r.cell for r in runs} == {"K6-iid", "K6-shards", "K12-iid", "K12-shards"}
    sweep = [r for r in runs if r.learning_rate is not None and r.cell == "K6-iid"]
    assert {(r.scheme, r.seed) for r in sweep} == {(s, seed) for s in SCHEMES for seed in (0, 1)}
    patience = [r.name for r in runs if r.patience is not None and r.cell == "K6-iid"]
    assert patience == ["individual-patience1", "individual-patience5"] * 2
    assert {r.name for r in runs if r.fixed_batch} >= {"gradient-feel-bmax-b8-fixed"}
    assert {r.scheme for r in runs if r.fixed_batch} == {"gradient-feel-bmax"}
    no_individual = CompareSettings(schemes=("full",), clients=(4,), partitions=("iid",), repeats=1)
    assert [r.name for r in no_individual.runs()] == ["full", "full-lr0.025", "full-lr0.1"]
    assert len(QUICK.runs()) == 7 * 2 + 2 + 2 * len(QUICK.decay_batches)
    assert QUICK.cells() == [(4, "iid", 32)]
    given = CompareSettings(run_config={"patience": 5}, clients=(4,), partitions=("iid",))
    assert {r.patience for r in given.runs()} == {None, 1}  # the run config's 5 is the main run


def test_run_directories_are_per_cell_seed_and_name(tmp_path):
    spec = RunSpec(12, "shards", 3, "my.mod:Policy", 0.5)
    assert spec.directory(tmp_path) == tmp_path / "runs/K12-shards/seed3/my.mod_Policy-lr0.5"


def test_remarks_compare_devices_of_equal_speed_for_the_rate():
    # Two speed tiers; within each the faster link gets the larger batch and smaller slot.
    speed = np.array([1.0, 1.0, 3.0, 3.0])
    rate = np.array([10.0, 20.0, 15.0, 12.0])  # deviations from the tier mean: -5, 5, 1.5, -1.5
    batch = np.array([10.0, 20.0, 41.0, 39.0])  # -5, 5, 1, -1
    slot = np.array([10.0, 0.5, 4.0, 6.0])  # 4.75, -4.75, -1, 1
    zeros = np.zeros(4)
    rho = remark_correlations(DeviceAllocation(speed, rate, batch, zeros, slot, zeros))
    assert rho["batch_vs_speed"] > 0.8
    assert rho["batch_vs_rate_same_speed"] == pytest.approx(1.0)
    assert rho["slot_vs_rate_same_speed"] == pytest.approx(-1.0)
    assert rho["slot_vs_rate"] < 0
